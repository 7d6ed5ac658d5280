// The umbrella header: everything in dtfm that needs only the standard library (no MPI, no CUDA).
#pragma once

#include "dtfm/config.hpp"
#include "dtfm/error.hpp"
#include "dtfm/spaces.hpp"

#include "dtfm/concepts/collective.hpp"
#include "dtfm/concepts/completion_handle.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/concepts/optimizer.hpp"
#include "dtfm/concepts/schedule.hpp"
#include "dtfm/concepts/stage.hpp"
#include "dtfm/concepts/transport.hpp"

#include "dtfm/transport/inproc.hpp"
#include "dtfm/transport/checked.hpp"
#include "dtfm/transport/faulty.hpp"
#include "dtfm/transport/throttled.hpp"

#include "dtfm/compress/cast.hpp"
#include "dtfm/compress/cocktail.hpp"
#include "dtfm/compress/delta.hpp"
#include "dtfm/compress/error_feedback.hpp"
#include "dtfm/compress/identity.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/compress/randomk.hpp"
#include "dtfm/compress/sign.hpp"
#include "dtfm/compress/topk.hpp"

#include "dtfm/collective/buckets.hpp"
#include "dtfm/collective/compressed_allreduce.hpp"
#include "dtfm/collective/gossip.hpp"
#include "dtfm/collective/hierarchical.hpp"
#include "dtfm/collective/powersgd.hpp"
#include "dtfm/collective/ring_allreduce.hpp"

#include "dtfm/optim/adamw.hpp"
#include "dtfm/optim/clip.hpp"
#include "dtfm/optim/schedule.hpp"
#include "dtfm/optim/sgd.hpp"
#include "dtfm/strategy/data_parallel.hpp"
