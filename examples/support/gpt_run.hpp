// What dtfm-train and dtfm-demo share: the corpus, the model configuration, one training run of the
// reference GPT on this rank, with the strategy types a compression mode names, and its JSON summary.
//   none — fp32 activations and gradients, ring all-reduce of the gradients every step;
//   dtfm — AC-SGD's delta<quantize<4>> activations forward, quantize<8> gradients backward, and
//          CocktailSGD's compressed all-reduce of each step's model change (residual_sync<1>);
//   pipeline, data-parallel — only that half of dtfm's compression.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <variant>

#include "dtfm/collective/compressed_allreduce.hpp"
#include "dtfm/collective/ring_allreduce.hpp"
#include "dtfm/compress/cocktail.hpp"
#include "dtfm/compress/delta.hpp"
#include "dtfm/compress/identity.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/data/markov.hpp"
#include "dtfm/data/text_corpus.hpp"
#include "dtfm/error.hpp"
#include "dtfm/nn/gpt_stage.hpp"
#include "dtfm/optim/adamw.hpp"
#include "dtfm/optim/schedule.hpp"
#include "dtfm/schedule/gpipe.hpp"
#include "dtfm/schedule/one_f_one_b.hpp"
#include "dtfm/strategy/data_parallel.hpp"
#include "dtfm/strategy/hybrid.hpp"
#include "dtfm/strategy/pipeline_parallel.hpp"
#include "dtfm/train/trainer.hpp"

namespace dtfm::examples {

struct run_settings {
    int stages = 2, replicas = 2;
    std::uint64_t steps = 200;
    int microbatches = 4, micro_batch = 8;
    std::string model = "tiny", compress = "none";
    std::string transport = "inproc";  // inproc (threads) or mpi (processes)
    std::string checkpoint, text;
    bool resume = false;
    std::uint64_t eval_every = 50, checkpoint_every = 0;
    int eval_microbatches = 2;
    int warmup_iterations = 20;  // uncompressed pipeline iterations before AC-SGD starts
    float lr = 3e-3f;
    std::uint64_t train_samples = 4096, seed = 1;
    double delta_budget_mib = 256;  // AC-SGD activation cache per boundary side
    train::progress::mode display = train::progress::mode::automatic;
};

// The corpus: a Markov source over 32 tokens (order 2, a known entropy floor) or a text file.
using corpus_type = std::variant<data::markov_source, data::text_corpus>;

inline corpus_type make_corpus(const run_settings& s) {
    if (!s.text.empty()) return data::text_corpus::load(s.text);
    return data::markov_source(32, 2, 3, s.seed);
}

inline int corpus_vocab(const corpus_type& c) {
    return std::visit([](const auto& x) { return static_cast<int>(x.vocab()); }, c);
}

inline nn::gpt_config model_config(const run_settings& s, const corpus_type& corpus) {
    nn::gpt_config c;
    if (s.model == "tiny") c = nn::gpt_config::tiny();
    else if (s.model == "small") c = nn::gpt_config::small();
    else throw config_error("--model must be tiny or small, got " + s.model);
    c.vocab = static_cast<std::size_t>(corpus_vocab(corpus));
    c.seed = s.seed;
    return c;
}

inline double entropy_floor(const corpus_type& c, const run_settings& s) {
    if (const auto* m = std::get_if<data::markov_source>(&c)) return m->loss_floor(static_cast<int>(model_config(s, c).context));
    return std::nan("");  // unknown for a text file
}

// A number for a JSON report: null where it is not finite (JSON has no NaN or infinity).
inline nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

// A run's outcome and its history as both programs report it.
inline nlohmann::json to_json(const train::run_summary& r) {
    nlohmann::json j;
    j["steps"] = r.steps;
    j["seconds"] = r.seconds;
    j["tokens_per_s"] = r.tokens_per_s;
    j["final_loss"] = finite_or_null(r.final_loss);
    j["final_eval_loss"] = finite_or_null(r.final_eval_loss);
    j["bytes_sent"] = r.last.bytes_sent;
    j["bytes_sent_pipeline"] = r.last.bytes_sent_pipeline;
    j["bytes_sent_data_parallel"] = r.last.bytes_sent_data_parallel;
    j["compression_ratio"] = r.last.compression_ratio();
    nlohmann::json history = nlohmann::json::array();
    for (const auto& h : r.history)
        history.push_back({{"step", h.step}, {"seconds", h.seconds}, {"loss", finite_or_null(h.loss)},
                           {"eval_loss", finite_or_null(h.eval_loss)}, {"tokens_per_s", h.tokens_per_s}, {"bytes_sent", h.bytes_sent}});
    j["history"] = history;
    return j;
}

// One training run on this rank of the mesh, with the strategy types PP and DP.
template <class PP, class DP, class World>
train::run_summary train_gpt(World& world, const run_settings& s, const strategy::mesh_placement& placement,
                             const corpus_type& corpus, PP pp, std::ostream* metrics) {
    const auto cfg = model_config(s, corpus);
    const int stage_index = placement.stage_of(world.rank());
    const int slots = PP::schedule_type::in_flight(stage_index, s.stages, s.microbatches);
    nn::gpt_stage stage(cfg, stage_index, s.stages, s.micro_batch, slots);

    train::trainer_options o;
    o.steps = s.steps;
    o.microbatches = s.microbatches;
    o.micro_batch = s.micro_batch;
    o.context = static_cast<int>(cfg.context);
    o.train_samples = s.train_samples;
    o.seed = s.seed;
    o.eval_every = s.eval_every;
    o.eval_microbatches = s.eval_microbatches;
    o.checkpoint_dir = s.checkpoint;
    o.checkpoint_every = s.checkpoint_every;
    o.resume = s.resume;
    o.metrics = metrics;
    o.display = s.display;
    o.entropy_floor = entropy_floor(corpus, s);
    const optim::warmup_cosine lr{.peak_lr = s.lr, .min_lr = s.lr / 10, .warmup_steps = std::min<std::size_t>(20, s.steps), .total_steps = s.steps};
    lr.validate();
    o.learning_rate = [lr](std::uint64_t step) { return static_cast<double>(lr(step)); };

    train::trainer<strategy::hybrid<PP, DP>> trainer(strategy::hybrid<PP, DP>(placement, std::move(pp), DP()), o);
    optim::adamw optimizer(optim::adamw_options{.lr = s.lr, .weight_decay = 0.01f});
    return std::visit([&](const auto& c) { return trainer.run(world, stage, optimizer, c); }, corpus);
}

// The run with the strategies s.compress names, on Schedule (one_f_one_b keeps fewer micro-batches
// in flight; gpipe pays a link's latency once per step instead of once per micro-batch).
template <class Schedule = schedule::one_f_one_b, class World>
train::run_summary train_gpt_compressed(World& world, const run_settings& s, const strategy::mesh_placement& placement,
                                        const corpus_type& corpus, std::ostream* metrics) {
    using identity = compress::identity;
    if (s.compress == "none") {
        using PP = strategy::pipeline_parallel<Schedule>;
        using DP = strategy::data_parallel<collective::ring, identity>;
        return train_gpt<PP, DP>(world, s, placement, corpus, PP(), metrics);
    }
    using fwd = compress::delta<compress::quantize<4>>;
    using bwd = compress::quantize<8>;
    using compressed_pp = strategy::pipeline_parallel<Schedule, fwd, bwd>;
    const auto budget = static_cast<std::size_t>(s.delta_budget_mib * 1024 * 1024);
    auto make_pp = [&] {
        return compressed_pp([budget] { return fwd(budget); }, [] { return bwd(); },
                             strategy::pipeline_options{.tag = 0, .timeout = std::chrono::minutes(5), .warmup_iterations = s.warmup_iterations});
    };
    using compressed_dp = strategy::data_parallel<collective::compressed_allreduce, compress::cocktail<>, strategy::residual_sync<1>>;
    if (s.compress == "pipeline") {  // one half of dtfm at a time, to see what each costs
        return train_gpt<compressed_pp, strategy::data_parallel<collective::ring, identity>>(world, s, placement, corpus, make_pp(), metrics);
    }
    if (s.compress == "data-parallel") {
        using PP = strategy::pipeline_parallel<Schedule>;
        return train_gpt<PP, compressed_dp>(world, s, placement, corpus, PP(), metrics);
    }
    if (s.compress == "dtfm") {
        // CocktailSGD compresses the model's change since the last sync, not the gradient: each
        // replica takes its own AdamW step, then the replicas average the step's change through
        // cocktail with error feedback, and each keeps its unsent residual in its own parameters
        // (residual_sync<1>). A sparse gradient fed to Adam instead makes its per-coordinate
        // scaling blow the rare large entries up; the residual held in the collective instead
        // (local_sgd<1>) delays each coordinate's change by ~the compression ratio in steps, and
        // Adam overshoots: that run stalled above the uniform loss.
        return train_gpt<compressed_pp, compressed_dp>(world, s, placement, corpus, make_pp(), metrics);
    }
    throw config_error("--compress must be none, dtfm, pipeline or data-parallel, got " + s.compress);
}

}  // namespace dtfm::examples
