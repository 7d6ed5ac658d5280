// Trains the toy staged model (toy_stage.hpp) with train::trainer on a 2 stages × 2 replicas
// in-process mesh, for the trainer and reliability tests: momentum SGD, 1F1B, a Markov corpus.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <vector>

#include "dtfm/collective/compressed_allreduce.hpp"
#include "dtfm/collective/ring_allreduce.hpp"
#include "dtfm/compress/cocktail.hpp"
#include "dtfm/compress/identity.hpp"
#include "dtfm/data/markov.hpp"
#include "dtfm/optim/sgd.hpp"
#include "dtfm/schedule/one_f_one_b.hpp"
#include "dtfm/strategy/data_parallel.hpp"
#include "dtfm/strategy/hybrid.hpp"
#include "dtfm/train/trainer.hpp"
#include "dtfm/transport/inproc.hpp"
#include "toy_stage.hpp"

namespace dtfm::test {

using toy_pipeline = strategy::pipeline_parallel<schedule::one_f_one_b>;
using exact_dp = strategy::data_parallel<collective::ring, compress::identity>;
using cocktail_dp = strategy::data_parallel<collective::compressed_allreduce, compress::cocktail<>>;

struct toy_outcome {
    std::vector<std::vector<float>> params;  // per world rank
    train::run_summary summary;              // the reporter's
};

inline train::trainer_options toy_options(std::uint64_t steps, toy_config c = {}) {
    train::trainer_options o;
    o.steps = steps;
    o.microbatches = 2;
    o.micro_batch = 2;
    o.context = c.context;
    o.train_samples = 64;
    o.eval_every = 4;
    o.eval_microbatches = 1;
    o.display = train::progress::mode::off;
    o.timeout = std::chrono::seconds(20);
    return o;
}

template <class DP>
toy_outcome train_toy(train::trainer_options o, toy_config c = {}) {
    const data::markov_source corpus(c.vocab, 1, 3, 8);
    const auto placement = strategy::mesh_placement::default_order(2, 2);
    toy_outcome out;
    out.params.resize(4);
    std::mutex m;
    transport::run_inproc(4, [&](transport::inproc& world) {
        train::trainer<strategy::hybrid<toy_pipeline, DP>> tr(
            strategy::hybrid<toy_pipeline, DP>(placement, toy_pipeline(strategy::pipeline_options{.tag = 0, .timeout = o.timeout}), DP()), o);
        toy_stage stage(c, placement.stage_of(world.rank()), 2, o.micro_batch, o.microbatches);
        optim::sgd opt(optim::sgd_options{.lr = 0.2f, .momentum = 0.9f});
        auto summary = tr.run(world, stage, opt, corpus);
        std::lock_guard lock(m);
        out.params[static_cast<std::size_t>(world.rank())].assign(stage.parameters().begin(), stage.parameters().end());
        if (summary.reporter) out.summary = summary;
    });
    return out;
}

}  // namespace dtfm::test
