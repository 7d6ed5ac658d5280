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
