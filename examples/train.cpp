// dtfm-train: trains the reference GPT with pipeline × data parallelism over emulated links.
// S stages × R replicas run as threads (--transport inproc, the default) or as MPI processes
// (--transport mpi, under `mpirun -n S*R`). Links are throttled from a topology file or to one
// uniform bandwidth and delay. --compress dtfm sends activations through AC-SGD's
// delta<quantize<4>>, their gradients through quantize<8>, and each step's model change through
// CocktailSGD's compressed all-reduce; --compress none sends fp32 everywhere.
//
//   dtfm-train [--stages 2] [--replicas 2] [--steps 200] [--micro-batches 4] [--micro-batch 8]
//              [--model tiny|small] [--compress none|dtfm] [--transport inproc|mpi]
//              [--topology FILE] [--plan FILE] [--gbps 10] [--delay-ms 0.1] [--time-scale 1]
//              [--report FILE] [--metrics FILE] [--checkpoint DIR] [--resume] [--text FILE]
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "dtfm/collective/compressed_allreduce.hpp"
#include "dtfm/collective/ring_allreduce.hpp"
#include "dtfm/compress/cocktail.hpp"
#include "dtfm/compress/delta.hpp"
#include "dtfm/compress/identity.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/data/markov.hpp"
#include "dtfm/data/text_corpus.hpp"
#include "dtfm/nn/gemm.hpp"
#include "dtfm/nn/gpt_stage.hpp"
#include "dtfm/optim/adamw.hpp"
#include "dtfm/optim/schedule.hpp"
#include "dtfm/plan/plan_file.hpp"
#include "dtfm/plan/topology.hpp"
#include "dtfm/schedule/one_f_one_b.hpp"
#include "dtfm/strategy/data_parallel.hpp"
#include "dtfm/strategy/hybrid.hpp"
#include "dtfm/strategy/pipeline_parallel.hpp"
#include "dtfm/train/trainer.hpp"
#include "dtfm/transport/inproc.hpp"
#include "dtfm/transport/throttled.hpp"
#ifdef DTFM_TRAIN_WITH_MPI
#include "dtfm/transport/mpi.hpp"
#include "dtfm/transport/mpi_environment.hpp"
#endif

namespace {

using namespace dtfm;

struct settings {
    int stages = 2, replicas = 2;
    std::uint64_t steps = 200;
    int microbatches = 4, micro_batch = 8;
    std::string model = "tiny", compress = "none", transport = "inproc";
    std::string topology, plan, report, metrics, checkpoint, text;
    double gbps = 10, delay_ms = 0.1, time_scale = 1;
    bool resume = false;
    std::uint64_t eval_every = 50, checkpoint_every = 0;
    int warmup_iterations = 20;  // uncompressed pipeline iterations before AC-SGD starts
    float lr = 3e-3f;
    std::uint64_t train_samples = 4096, seed = 1;
    double delta_budget_mib = 256;  // AC-SGD activation cache per boundary side
};

// The corpus: a Markov source over 32 tokens (order 2, a known entropy floor) or a text file.
using corpus_type = std::variant<data::markov_source, data::text_corpus>;

corpus_type make_corpus(const settings& s) {
    if (!s.text.empty()) return data::text_corpus::load(s.text);
    return data::markov_source(32, 2, 3, s.seed);
}

int corpus_vocab(const corpus_type& c) {
    return std::visit([](const auto& x) { return static_cast<int>(x.vocab()); }, c);
}

double entropy_floor(const corpus_type& c, int context) {
    if (const auto* m = std::get_if<data::markov_source>(&c)) return m->loss_floor(context);
    return std::nan("");  // unknown for a text file
}

nn::gpt_config model_config(const settings& s, const corpus_type& corpus) {
    nn::gpt_config c;
    if (s.model == "tiny") c = nn::gpt_config::tiny();
    else if (s.model == "small") c = nn::gpt_config::small();
    else throw config_error("--model must be tiny or small, got " + s.model);
    c.vocab = static_cast<std::size_t>(corpus_vocab(corpus));
    c.seed = s.seed;
    return c;
}

strategy::mesh_placement placement_of(const settings& s) {
    auto p = s.plan.empty() ? strategy::mesh_placement::default_order(s.stages, s.replicas) : plan::load_placement(s.plan);
    if (p.stages() != s.stages || p.replicas() != s.replicas)
        throw config_error("the plan has " + std::to_string(p.stages()) + " stages × " + std::to_string(p.replicas()) +
                           " replicas, the flags ask for " + std::to_string(s.stages) + " × " + std::to_string(s.replicas));
    return p;
}

transport::link_model links_of(const settings& s) {
    const int ranks = s.stages * s.replicas;
    transport::link_model m = s.topology.empty() ? transport::link_model::uniform(ranks, s.delay_ms, s.gbps)
                                                 : transport::link_model::from_topology(plan::load_topology(s.topology));
    if (m.devices() < ranks)
        throw config_error("the topology has " + std::to_string(m.devices()) + " devices, the mesh needs " + std::to_string(ranks));
    m.with_time_scale(s.time_scale);
    return m;
}

// One training run on this rank, with the strategy types --compress chose.
template <class PP, class DP, class World>
train::run_summary train_rank(World& world, const settings& s, const corpus_type& corpus, PP pp, std::ostream* metrics) {
    const auto placement = placement_of(s);
    const auto cfg = model_config(s, corpus);
    const int stage_index = placement.stage_of(world.rank());
    const int slots = schedule::one_f_one_b::in_flight(stage_index, s.stages, s.microbatches);
    nn::gpt_stage stage(cfg, stage_index, s.stages, s.micro_batch, slots);

    train::trainer_options o;
    o.steps = s.steps;
    o.microbatches = s.microbatches;
    o.micro_batch = s.micro_batch;
    o.context = static_cast<int>(cfg.context);
    o.train_samples = s.train_samples;
    o.seed = s.seed;
    o.eval_every = s.eval_every;
    o.eval_microbatches = 2;
    o.checkpoint_dir = s.checkpoint;
    o.checkpoint_every = s.checkpoint_every;
    o.resume = s.resume;
    o.metrics = metrics;
    o.entropy_floor = entropy_floor(corpus, static_cast<int>(cfg.context));
    const optim::warmup_cosine lr{.peak_lr = s.lr, .min_lr = s.lr / 10, .warmup_steps = std::min<std::size_t>(20, s.steps), .total_steps = s.steps};
    lr.validate();
    o.learning_rate = [lr](std::uint64_t step) { return static_cast<double>(lr(step)); };

    train::trainer<strategy::hybrid<PP, DP>> trainer(strategy::hybrid<PP, DP>(placement, std::move(pp), DP()), o);
    optim::adamw optimizer(optim::adamw_options{.lr = s.lr, .weight_decay = 0.01f});
    return std::visit([&](const auto& c) { return trainer.run(world, stage, optimizer, c); }, corpus);
}

template <class World>
train::run_summary train_with_compression(World& world, const settings& s, const corpus_type& corpus, std::ostream* metrics) {
    using identity = compress::identity;
    if (s.compress == "none") {
        using PP = strategy::pipeline_parallel<schedule::one_f_one_b>;
        using DP = strategy::data_parallel<collective::ring, identity>;
        return train_rank<PP, DP>(world, s, corpus, PP(), metrics);
    }
    if (s.compress == "dtfm") {
        using fwd = compress::delta<compress::quantize<4>>;
        using bwd = compress::quantize<8>;
        using PP = strategy::pipeline_parallel<schedule::one_f_one_b, fwd, bwd>;
        // CocktailSGD compresses the model's change since the last sync, not the gradient: each
        // replica takes its own AdamW step, then the replicas average the step's change through
        // cocktail with error feedback, and each keeps its unsent residual in its own parameters
        // (residual_sync<1>). A sparse gradient fed to Adam instead makes its per-coordinate
        // scaling blow the rare large entries up; the residual held in the collective instead
        // (local_sgd<1>) delays each coordinate's change by ~the compression ratio in steps, and
        // Adam overshoots: that run stalled above the uniform loss.
        using DP = strategy::data_parallel<collective::compressed_allreduce, compress::cocktail<>, strategy::residual_sync<1>>;
        const auto budget = static_cast<std::size_t>(s.delta_budget_mib * 1024 * 1024);
        PP pp([budget] { return fwd(budget); }, [] { return bwd(); },
              strategy::pipeline_options{.tag = 0, .timeout = std::chrono::minutes(5), .warmup_iterations = s.warmup_iterations});
        return train_rank<PP, DP>(world, s, corpus, std::move(pp), metrics);
    }
    throw config_error("--compress must be none or dtfm, got " + s.compress);
}

void write_report(const settings& s, const corpus_type& corpus, const train::run_summary& r) {
    nlohmann::json j;
    j["steps"] = r.steps;
    j["first_step"] = r.first_step;
    j["tokens_per_s"] = r.tokens_per_s;
    j["seconds"] = r.seconds;
    j["final_loss"] = std::isfinite(r.final_loss) ? nlohmann::json(r.final_loss) : nlohmann::json(nullptr);
    j["final_eval_loss"] = std::isfinite(r.final_eval_loss) ? nlohmann::json(r.final_eval_loss) : nlohmann::json(nullptr);
    const double floor = entropy_floor(corpus, static_cast<int>(model_config(s, corpus).context));
    j["entropy_floor"] = std::isfinite(floor) ? nlohmann::json(floor) : nlohmann::json(nullptr);
    j["bytes_sent"] = r.last.bytes_sent;
    j["bytes_sent_pipeline"] = r.last.bytes_sent_pipeline;
    j["bytes_sent_data_parallel"] = r.last.bytes_sent_data_parallel;
    j["compression_ratio"] = r.last.compression_ratio();
    j["config"] = {{"stages", s.stages}, {"replicas", s.replicas}, {"micro_batches", s.microbatches}, {"micro_batch", s.micro_batch},
                   {"model", s.model}, {"compress", s.compress}, {"transport", s.transport}, {"gbps", s.gbps},
                   {"delay_ms", s.delay_ms}, {"topology", s.topology}, {"time_scale", s.time_scale}};
    nlohmann::json history = nlohmann::json::array();
    for (const auto& h : r.history) {
        history.push_back({{"step", h.step}, {"seconds", h.seconds}, {"loss", std::isfinite(h.loss) ? nlohmann::json(h.loss) : nlohmann::json(nullptr)},
                           {"eval_loss", std::isfinite(h.eval_loss) ? nlohmann::json(h.eval_loss) : nlohmann::json(nullptr)},
                           {"tokens_per_s", h.tokens_per_s}, {"bytes_sent", h.bytes_sent}});
    }
    j["history"] = history;
    std::ofstream out(s.report);
    if (!out) throw config_error("cannot write the report " + s.report);
    out << j.dump(2) << '\n';
}

void print_summary(const settings& s, const corpus_type& corpus, const train::run_summary& r) {
    const double floor = entropy_floor(corpus, static_cast<int>(model_config(s, corpus).context));
    std::printf("dtfm-train: %d stages x %d replicas, %s, compress %s: %llu steps in %.1f s, %.0f tokens/s\n", s.stages, s.replicas,
                s.transport.c_str(), s.compress.c_str(), static_cast<unsigned long long>(r.steps), r.seconds, r.tokens_per_s);
    std::printf("  final loss %.4f, eval loss %.4f (entropy floor %.4f), %.1f MB sent, compression %.1fx\n", r.final_loss,
                r.final_eval_loss, floor, static_cast<double>(r.last.bytes_sent) / 1e6, r.last.compression_ratio());
}

}  // namespace

int main(int argc, char** argv) {
    settings s;
    CLI::App app{"dtfm-train: the reference GPT over emulated slow links, pipeline x data parallel"};
    app.add_option("--stages", s.stages, "pipeline stages")->check(CLI::Range(1, 64));
    app.add_option("--replicas", s.replicas, "data-parallel replicas")->check(CLI::Range(1, 64));
    app.add_option("--steps", s.steps, "training steps")->check(CLI::Range(std::uint64_t{1}, std::uint64_t{10'000'000}));
    app.add_option("--micro-batches", s.microbatches, "micro-batches per step")->check(CLI::Range(1, 1024));
    app.add_option("--micro-batch", s.micro_batch, "sequences per micro-batch")->check(CLI::Range(1, 4096));
    app.add_option("--model", s.model, "tiny or small")->check(CLI::IsMember({"tiny", "small"}));
    app.add_option("--compress", s.compress, "none or dtfm")->check(CLI::IsMember({"none", "dtfm"}));
    app.add_option("--transport", s.transport, "inproc or mpi")->check(CLI::IsMember({"inproc", "mpi"}));
    app.add_option("--topology", s.topology, "scenario JSON: per-pair delay and bandwidth")->check(CLI::ExistingFile);
    app.add_option("--plan", s.plan, "plan file: {\"pipelines\": [[device per stage] per replica]}")->check(CLI::ExistingFile);
    app.add_option("--gbps", s.gbps, "every link's bandwidth without --topology")->check(CLI::Range(1e-6, 1e4));
    app.add_option("--delay-ms", s.delay_ms, "every link's one-way delay without --topology")->check(CLI::Range(0.0, 1e5));
    app.add_option("--time-scale", s.time_scale, "multiplies every emulated transfer time")->check(CLI::Range(0.0, 1e6));
    app.add_option("--report", s.report, "write a JSON report here");
    app.add_option("--metrics", s.metrics, "write JSON-lines metrics here");
    app.add_option("--checkpoint", s.checkpoint, "checkpoint directory");
    app.add_option("--checkpoint-every", s.checkpoint_every, "steps between checkpoints (0: only at the end)");
    app.add_flag("--resume", s.resume, "resume from the checkpoint directory's latest step");
    app.add_option("--eval-every", s.eval_every, "steps between evaluations (0: only at the end)");
    app.add_option("--lr", s.lr, "peak AdamW learning rate")->check(CLI::Range(0.0f, 1.0f));
    app.add_option("--warmup-iterations", s.warmup_iterations, "uncompressed pipeline iterations with --compress dtfm")->check(CLI::Range(0, 1'000'000));
    app.add_option("--text", s.text, "train on this file's bytes instead of the Markov corpus")->check(CLI::ExistingFile);
    app.add_option("--seed", s.seed, "model, data and corpus seed");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }

    try {
        if (s.resume && s.checkpoint.empty()) throw config_error("--resume needs --checkpoint DIR");
        nn::set_blas_threads(1);  // ranks are threads or processes: one BLAS thread each
        const corpus_type corpus = make_corpus(s);
        const int ranks = s.stages * s.replicas;
        std::unique_ptr<std::ofstream> metrics_file;
        if (!s.metrics.empty()) {
            metrics_file = std::make_unique<std::ofstream>(s.metrics);
            if (!*metrics_file) throw config_error("cannot write the metrics " + s.metrics);
        }
        std::optional<train::run_summary> result;
        std::mutex m;
        auto keep = [&](const train::run_summary& r) {
            if (!r.reporter) return;
            std::lock_guard lock(m);
            result = r;
        };
        if (s.transport == "inproc") {
            const auto links = links_of(s);
            transport::run_inproc(ranks, [&](transport::inproc& world) {
                transport::throttled<transport::inproc> t(world, links);
                keep(train_with_compression(t, s, corpus, metrics_file.get()));
            });
        } else {
#ifdef DTFM_TRAIN_WITH_MPI
            transport::mpi_environment env(argc, argv);
            transport::mpi world;
            if (world.size() != ranks)
                throw config_error("mpirun started " + std::to_string(world.size()) + " processes, the mesh needs " + std::to_string(ranks));
            transport::throttled<transport::mpi> t(std::move(world), links_of(s));
            const auto r = train_with_compression(t, s, corpus, metrics_file.get());
            keep(r);
#else
            throw config_error("this dtfm-train was built without MPI");
#endif
        }
        if (result) {
            print_summary(s, corpus, *result);
            if (!s.report.empty()) write_report(s, corpus, *result);
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dtfm-train: %s\n", e.what());
        return 1;
    }
}
