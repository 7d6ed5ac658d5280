// dtfm-train: trains the reference GPT with pipeline × data parallelism over emulated links.
// S stages × R replicas run as threads (--transport inproc, the default) or as MPI processes
// (--transport mpi, under `mpirun -n S*R`). Links are throttled from a topology file or to one
// uniform bandwidth and delay. --compress dtfm sends activations through AC-SGD's
// delta<quantize<4>>, their gradients through quantize<8>, and each step's model change through
// CocktailSGD's compressed all-reduce; --compress none sends fp32 everywhere.
//
//   dtfm-train [--stages 2] [--replicas 2] [--steps 200] [--micro-batches 4] [--micro-batch 8]
//              [--model tiny|small] [--compress none|dtfm|pipeline|data-parallel] [--transport inproc|mpi]
//              [--topology FILE] [--plan FILE] [--gbps 10] [--delay-ms 0.1] [--time-scale 1]
//              [--report FILE] [--metrics FILE] [--checkpoint DIR] [--resume] [--text FILE]
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "dtfm/nn/gemm.hpp"
#include "dtfm/plan/plan_file.hpp"
#include "dtfm/plan/topology.hpp"
#include "dtfm/transport/inproc.hpp"
#include "dtfm/transport/throttled.hpp"
#ifdef DTFM_TRAIN_WITH_MPI
#include "dtfm/transport/mpi.hpp"
#include "dtfm/transport/mpi_environment.hpp"
#endif
#include "support/gpt_run.hpp"
#include "support/run_options.hpp"

namespace {

using namespace dtfm;
using examples::corpus_type;

struct settings : examples::run_settings {
    std::string topology, plan, report, metrics;
    double gbps = 10, delay_ms = 0.1, time_scale = 1;
};

double entropy_floor(const corpus_type& c, const settings& s) { return examples::entropy_floor(c, s); }

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

template <class World>
train::run_summary train_with_compression(World& world, const settings& s, const corpus_type& corpus, std::ostream* metrics) {
    return examples::train_gpt_compressed(world, s, placement_of(s), corpus, metrics);
}

void write_report(const settings& s, const corpus_type& corpus, const train::run_summary& r) {
    nlohmann::json j = examples::to_json(r);
    j["first_step"] = r.first_step;
    j["entropy_floor"] = examples::finite_or_null(entropy_floor(corpus, s));
    j["config"] = {{"stages", s.stages}, {"replicas", s.replicas}, {"micro_batches", s.microbatches}, {"micro_batch", s.micro_batch},
                   {"model", s.model}, {"compress", s.compress}, {"transport", s.transport}, {"gbps", s.gbps},
                   {"delay_ms", s.delay_ms}, {"topology", s.topology}, {"time_scale", s.time_scale}};
    std::ofstream out(s.report);
    if (!out) throw config_error("cannot write the report " + s.report);
    out << j.dump(2) << '\n';
}

void print_summary(const settings& s, const corpus_type& corpus, const train::run_summary& r) {
    const double floor = entropy_floor(corpus, s);
    std::printf("dtfm-train: %d stages x %d replicas, %s, compress %s: %llu steps in %.1f s, %.0f tokens/s\n", s.stages, s.replicas,
                s.transport.c_str(), s.compress.c_str(), static_cast<unsigned long long>(r.steps), r.seconds, r.tokens_per_s);
    std::printf("  final loss %.4f, eval loss %.4f (entropy floor %.4f), %.1f MB sent, compression %.1fx\n", r.final_loss,
                r.final_eval_loss, floor, static_cast<double>(r.last.bytes_sent) / 1e6, r.last.compression_ratio());
}

}  // namespace

int main(int argc, char** argv) {
    settings s;
    CLI::App app{"dtfm-train: the reference GPT over emulated slow links, pipeline x data parallel"};
    examples::add_mesh_options(app, s);
    app.add_option("--steps", s.steps, "training steps")->check(CLI::Range(std::uint64_t{1}, std::uint64_t{10'000'000}));
    examples::add_micro_batch_options(app, s);
    app.add_option("--model", s.model, "tiny or small")->check(CLI::IsMember({"tiny", "small"}));
    app.add_option("--compress", s.compress, "none, dtfm, or one half of dtfm: pipeline or data-parallel")
        ->check(CLI::IsMember({"none", "dtfm", "pipeline", "data-parallel"}));
    examples::add_transport_option(app, s);
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
    examples::add_seed_option(app, s);
    if (const auto status = examples::parse_command_line(app, argc, argv)) return *status;

    try {
        if (s.resume && s.checkpoint.empty()) throw config_error("--resume needs --checkpoint DIR");
        nn::set_blas_threads(1);  // ranks are threads or processes: one BLAS thread each
        const corpus_type corpus = examples::make_corpus(s);
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
