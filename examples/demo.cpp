// dtfm-demo: dtfm's headline in one program. It loads a topology (embedded default: two regions
// of two devices, every link between devices 100 Mbit/s with 25 ms one-way delay), plans the
// placement, and trains the reference GPT with pipeline × data parallelism three times, the same
// steps on the same data:
//   fast               — uncompressed, every link 10 Gbit/s, 0.1 ms (a data centre);
//   slow_uncompressed  — uncompressed over the topology's slow links, default placement;
//   slow_dtfm          — the same slow links, the planned placement, dtfm's compression (AC-SGD
//                        activations, CocktailSGD model averaging with residual_sync).
// All three use the GPipe schedule, which pays a link's latency once per step rather than once per
// micro-batch. It ends with a table, a JSON report and a PNG chart of eval loss against wall-clock
// time.
// Ranks are threads (--transport inproc, the default) or MPI processes (--transport mpi, under
// `mpirun -n 4`); links are emulated by transport::throttled either way.
//
//   dtfm-demo [--steps N] [--topology FILE] [--transport inproc|mpi] [--report demo-report.json]
//             [--chart demo-chart.png] [--stages 2] [--replicas 2] [--micro-batches M] [--micro-batch B]
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "dtfm/nn/gemm.hpp"
#include "dtfm/plan/search.hpp"
#include "dtfm/plan/topology.hpp"
#include "dtfm/transport/inproc.hpp"
#include "dtfm/transport/throttled.hpp"
#ifdef DTFM_DEMO_WITH_MPI
#include "dtfm/transport/mpi.hpp"
#include "dtfm/transport/mpi_environment.hpp"
#endif
#include "support/gpt_run.hpp"
#include "support/line_chart.hpp"
#include "support/run_options.hpp"

namespace {

using namespace dtfm;

// Two regions of two devices; every pair of devices is joined by a WAN-grade link: 100 Mbit/s,
// 25 ms one way — 100× less bandwidth than the fast run's 10 Gbit/s.
constexpr const char* default_topology = R"({
  "name": "dtfm-demo-two-regions",
  "description": "two regions of two devices; every link between devices 100 Mbit/s, 25 ms one way",
  "units": {"delay": "ms", "bandwidth": "Gbps", "peak_tflops": "TFLOP/s"},
  "devices": [
    {"name": "eu0", "region": "eu", "gpu": "cpu-thread", "peak_tflops": 0.01, "memory_gib": 1},
    {"name": "eu1", "region": "eu", "gpu": "cpu-thread", "peak_tflops": 0.01, "memory_gib": 1},
    {"name": "us0", "region": "us", "gpu": "cpu-thread", "peak_tflops": 0.01, "memory_gib": 1},
    {"name": "us1", "region": "us", "gpu": "cpu-thread", "peak_tflops": 0.01, "memory_gib": 1}
  ],
  "delay_ms": [[0, 25, 25, 25], [25, 0, 25, 25], [25, 25, 0, 25], [25, 25, 25, 0]],
  "bandwidth_gbps": [[1000, 0.1, 0.1, 0.1], [0.1, 1000, 0.1, 0.1], [0.1, 0.1, 1000, 0.1], [0.1, 0.1, 0.1, 1000]]
})";

struct settings : examples::run_settings {
    settings() {
        // Defaults chosen for ≤ 5 minutes on 2 cores for all three runs, with an iteration's compute
        // (hundreds of ms) large against the slow links' 25 ms, as a large model's is against a WAN.
        steps = 60;
        microbatches = 4;
        micro_batch = 4;
        eval_every = 15;
        eval_microbatches = 2;
        train_samples = 512;      // revisited every 16 steps, so AC-SGD's deltas carry the last 44
        warmup_iterations = 16;   // one epoch uncompressed fills the activation caches
        display = train::progress::mode::automatic;
    }
    std::string topology, report = "demo-report.json", chart = "demo-chart.png";
    double fast_gbps = 10, fast_delay_ms = 0.1;
    double plan_seconds = 0.5;
};

struct run_spec {
    const char* key;    // in the report's "runs"
    const char* title;  // in the table and the chart
    const char* links;
    std::string compress;
    bool fast_links, planned;
};

const std::array<run_spec, 3> runs_of = {{
    {"fast", "fast", "10 Gbit/s, 0.1 ms", "none", true, false},
    {"slow_uncompressed", "slow, uncompressed", "topology (100 Mbit/s, 25 ms)", "none", false, false},
    {"slow_dtfm", "slow, dtfm", "topology (100 Mbit/s, 25 ms)", "dtfm", false, true},
}};

double number_or_nan(const nlohmann::json& j) { return j.is_number() ? j.get<double>() : std::nan(""); }

// Rank 0 gathers the reporter's summary (under MPI the reporting rank can be any process).
template <class T>
std::optional<nlohmann::json> gather_summary(T& world, const std::optional<train::run_summary>& mine, int reporter) {
    const message_tag size_tag{channel::user, 901}, body_tag{channel::user, 902};
    if (world.rank() == reporter && reporter == 0) return examples::to_json(*mine);
    if (world.rank() == reporter) {
        const std::string text = examples::to_json(*mine).dump();
        const std::uint64_t size = text.size();
        world.isend(0, size_tag, std::as_bytes(std::span<const std::uint64_t>(&size, 1))).wait();
        world.isend(0, body_tag, std::as_bytes(std::span<const char>(text.data(), text.size()))).wait();
        return std::nullopt;
    }
    if (world.rank() != 0) return std::nullopt;
    std::uint64_t size = 0;
    world.irecv(reporter, size_tag, std::as_writable_bytes(std::span<std::uint64_t>(&size, 1))).wait();
    if (size > (std::uint64_t{1} << 30)) throw wire_error(wire_error::reason::bad_length, "dtfm-demo: a run summary of " + std::to_string(size) + " bytes");
    std::string text(static_cast<std::size_t>(size), '\0');
    const std::size_t got = world.irecv(reporter, body_tag, std::as_writable_bytes(std::span<char>(text.data(), text.size()))).wait();
    if (got != size) throw wire_error(wire_error::reason::truncated, "dtfm-demo: a truncated run summary");
    return nlohmann::json::parse(text);
}

plan::topology load(const settings& s) {
    return s.topology.empty() ? plan::parse_topology(default_topology, "the embedded two-region topology") : plan::load_topology(s.topology);
}

strategy::mesh_placement to_mesh(const plan::placement& p) { return strategy::mesh_placement(p.pipelines); }

struct planned {
    strategy::mesh_placement placement;
    plan::cost_breakdown cost, default_cost;
};

planned plan_placement(const settings& s, const plan::topology& t, const examples::corpus_type& corpus) {
    const int ranks = s.stages * s.replicas;
    if (t.size() != static_cast<std::size_t>(ranks))
        throw config_error("the topology has " + std::to_string(t.size()) + " devices; the demo's mesh of " + std::to_string(s.stages) +
                           " stages × " + std::to_string(s.replicas) + " replicas needs exactly " + std::to_string(ranks));
    // DT-FM's cost model with this model's volumes: a stage's fp32 parameters for the data-parallel
    // exchange, one step's fp32 activations across a stage boundary for the pipeline.
    const auto cfg = examples::model_config(s, corpus);
    const double stage_bytes = 4.0 * static_cast<double>(cfg.parameter_count()) / s.stages;
    const double activation_bytes = 4.0 * s.microbatches * s.micro_batch * static_cast<double>(cfg.context * cfg.d_model);
    const plan::cost_params costs{.c_dp_gb = stage_bytes / 1e9, .c_pp_gb = activation_bytes / 1e9};
    const auto found = plan::anneal_search(
        t, s.stages, plan::search_options{.seed = s.seed, .seconds = s.plan_seconds, .iterations = 20000, .costs = costs});
    const plan::placement as_default{strategy::mesh_placement::default_order(s.stages, s.replicas).pipelines()};
    return {to_mesh(found.plan), found.cost, plan::communication_cost(t, as_default, costs)};
}

// One run's settings, placement and links; announce prints its header line.
struct run_setup {
    settings s;
    strategy::mesh_placement placement;
    transport::link_model links;
};

run_setup prepare_run(const run_spec& spec, const settings& s, const planned& p, const plan::topology& topo, bool announce) {
    settings rs = s;
    rs.compress = spec.compress;
    auto placement = spec.planned ? p.placement : strategy::mesh_placement::default_order(s.stages, s.replicas);
    auto links = spec.fast_links ? transport::link_model::uniform(s.stages * s.replicas, s.fast_delay_ms, s.fast_gbps)
                                 : transport::link_model::from_topology(topo);
    if (announce) std::fprintf(stderr, "== %s: %s, compress %s\n", spec.title, spec.links, spec.compress.c_str());
    return {std::move(rs), std::move(placement), std::move(links)};
}

void print_table(const nlohmann::json& runs) {
    const double fast_tps = runs.at("fast")["tokens_per_s"].get<double>();
    const double fast_loss = number_or_nan(runs.at("fast")["final_eval_loss"]);
    std::printf("\n| run | links | tokens/s | slowdown vs fast | final eval loss | vs fast | MB sent |\n");
    std::printf("|---|---|---:|---:|---:|---:|---:|\n");
    for (const auto& spec : runs_of) {
        const auto& r = runs.at(spec.key);
        const double tps = r["tokens_per_s"].get<double>(), loss = number_or_nan(r["final_eval_loss"]);
        std::printf("| %s | %s | %.0f | %.2fx | %.4f | %+.2f %% | %.1f |\n", spec.title, spec.links, tps, fast_tps / tps, loss,
                    100.0 * (loss / fast_loss - 1.0), r["bytes_sent"].get<double>() / 1e6);
    }
}

void write_chart(const settings& s, const nlohmann::json& runs, double floor) {
    examples::line_chart chart;
    chart.title("dtfm-demo: eval loss against wall-clock time");
    chart.x_label("wall-clock seconds");
    // The floor goes in the label, not as a line: a line far below the curves would flatten them.
    char label[96];
    std::snprintf(label, sizeof label, std::isfinite(floor) ? "eval loss, nats/token (floor %.2f)" : "eval loss, nats/token", floor);
    chart.y_label(label);
    const examples::rgb colours[] = {{31, 119, 180}, {214, 39, 40}, {44, 160, 44}};
    int i = 0;
    for (const auto& spec : runs_of) {
        std::vector<double> xs, ys;
        for (const auto& h : runs.at(spec.key).at("history")) {
            if (!h["eval_loss"].is_number()) continue;
            xs.push_back(h["seconds"].get<double>());
            ys.push_back(h["eval_loss"].get<double>());
        }
        chart.add_series(spec.title, colours[i++], std::move(xs), std::move(ys));
    }
    chart.write_png(s.chart);
}

}  // namespace

int main(int argc, char** argv) {
    settings s;
    CLI::App app{"dtfm-demo: the GPT trained over fast links, slow links, and slow links with dtfm"};
    app.add_option("--steps", s.steps, "training steps of each run")->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000}));
    app.add_option("--topology", s.topology, "scenario JSON for the slow runs (default: the embedded two-region cluster)")->check(CLI::ExistingFile);
    examples::add_transport_option(app, s);
    app.add_option("--report", s.report, "JSON report");
    app.add_option("--chart", s.chart, "PNG chart of eval loss against wall-clock time");
    examples::add_mesh_options(app, s);
    examples::add_micro_batch_options(app, s);
    app.add_option("--eval-every", s.eval_every, "steps between evaluations")->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000}));
    app.add_option("--train-samples", s.train_samples, "training sequences (revisited each epoch)")->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
    app.add_option("--warmup-iterations", s.warmup_iterations, "uncompressed pipeline iterations before AC-SGD")->check(CLI::Range(0, 1'000'000));
    examples::add_seed_option(app, s);
    if (const auto status = examples::parse_command_line(app, argc, argv)) return *status;

    try {
        nn::set_blas_threads(1);
        const auto topo = load(s);
        const auto corpus = examples::make_corpus(s);
        const auto p = plan_placement(s, topo, corpus);
        const int ranks = s.stages * s.replicas;
        const double floor = examples::entropy_floor(corpus, s);

        nlohmann::json runs;
        bool root = true;
        if (s.transport == "inproc") {
            std::fprintf(stderr, "dtfm-demo: %d stages x %d replicas of the tiny GPT as %d threads, %llu steps per run\n", s.stages,
                         s.replicas, ranks, static_cast<unsigned long long>(s.steps));
            for (const auto& spec : runs_of) {
                const auto run = prepare_run(spec, s, p, topo, true);
                std::mutex m;
                transport::run_inproc(ranks, [&](transport::inproc& world) {
                    transport::throttled<transport::inproc> t(world, run.links);
                    const auto r = examples::train_gpt_compressed<schedule::gpipe>(t, run.s, run.placement, corpus, nullptr);
                    if (!r.reporter) return;
                    std::lock_guard lock(m);
                    runs[spec.key] = examples::to_json(r);
                });
            }
        } else {
#ifdef DTFM_DEMO_WITH_MPI
            transport::mpi_environment env(argc, argv);
            transport::mpi world;
            if (world.size() != ranks)
                throw config_error("mpirun started " + std::to_string(world.size()) + " processes, the mesh needs " + std::to_string(ranks));
            root = world.rank() == 0;
            if (!root) s.display = train::progress::mode::off;
            for (const auto& spec : runs_of) {
                const auto run = prepare_run(spec, s, p, topo, root);
                std::optional<train::run_summary> mine;
                {
                    transport::throttled<transport::mpi> t(world.split(0, world.rank()), run.links);
                    auto r = examples::train_gpt_compressed<schedule::gpipe>(t, run.s, run.placement, corpus, nullptr);
                    if (r.reporter) mine = std::move(r);
                }
                const int reporter = run.placement.rank_at(s.stages - 1, 0);
                if (auto j = gather_summary(world, mine, reporter)) runs[spec.key] = *j;
            }
#else
            throw config_error("this dtfm-demo was built without MPI");
#endif
        }
        if (!root) return 0;

        // Compute against communication: the fast run's iteration time, and the time its bytes and
        // latencies take per iteration on the fast and on the slow links (a lower bound: one link
        // per rank, no contention).
        const auto& fast = runs.at("fast");
        const double iteration_s = fast.at("seconds").get<double>() / static_cast<double>(s.steps);
        const double bytes_per_rank = fast.at("bytes_sent").get<double>() / static_cast<double>(s.steps) / ranks;
        // Latencies on the critical path: GPipe's fill and drain, the all-reduce's two phases.
        const double hops = (s.stages > 1 ? 2.0 : 0.0) + (s.replicas > 1 ? 2.0 : 0.0);
        auto comm_s = [&](double gbps, double delay_ms) { return bytes_per_rank * 8 / (gbps * 1e9) + hops * delay_ms / 1e3; };
        const double fast_comm = comm_s(s.fast_gbps, s.fast_delay_ms);
        const double slow_comm = comm_s(topo.bandwidth_gbps(0, 1), topo.delay_ms(0, 1));

        nlohmann::json report;
        report["runs"] = runs;
        report["config"] = {{"stages", s.stages}, {"replicas", s.replicas}, {"steps", s.steps}, {"micro_batches", s.microbatches},
                            {"micro_batch", s.micro_batch}, {"model", s.model}, {"transport", s.transport},
                            {"topology", s.topology.empty() ? std::string("embedded two-region") : s.topology},
                            {"fast_links", {{"gbps", s.fast_gbps}, {"delay_ms", s.fast_delay_ms}}}};
        report["plan"] = {{"pipelines", p.placement.pipelines()}, {"cost_s", p.cost.total}, {"default_order_cost_s", p.default_cost.total}};
        report["entropy_floor"] = examples::finite_or_null(floor);
        report["compute_to_communication"] = {{"iteration_s", iteration_s},
                                              {"bytes_per_rank_per_iteration", bytes_per_rank},
                                              {"fast_links_communication_s", fast_comm},
                                              {"fast_ratio", iteration_s / fast_comm},
                                              {"slow_links_communication_s", slow_comm},
                                              {"slow_ratio", iteration_s / slow_comm}};
        const double slow_tps = runs.at("slow_dtfm").at("tokens_per_s").get<double>(), fast_tps = fast.at("tokens_per_s").get<double>();
        const double loss_gap = number_or_nan(runs.at("slow_dtfm").at("final_eval_loss")) / number_or_nan(fast.at("final_eval_loss")) - 1.0;
        report["targets"] = {{"slow_dtfm_slowdown", fast_tps / slow_tps}, {"slowdown_target", 1.3},
                             {"slowdown_met", fast_tps / slow_tps <= 1.3}, {"eval_loss_gap", loss_gap},
                             {"eval_loss_gap_target", 0.02}, {"eval_loss_met", std::abs(loss_gap) <= 0.02}};
        std::ofstream out(s.report);
        if (!out) throw config_error("cannot write the report " + s.report);
        out << report.dump(2) << '\n';

        print_table(runs);
        std::printf("\nplan: %s (communication cost %.3f s; default order %.3f s)\n", nlohmann::json(p.placement.pipelines()).dump().c_str(),
                    p.cost.total, p.default_cost.total);
        std::printf("compute : communication per iteration: %.0f ms : %.1f ms on the fast links (%.0fx), %.0f ms on the slow links (%.1fx)\n",
                    iteration_s * 1e3, fast_comm * 1e3, iteration_s / fast_comm, slow_comm * 1e3, iteration_s / slow_comm);
        std::printf("entropy floor %.4f; slow dtfm is %.2fx slower than fast (target <= 1.3), eval loss %+.2f %% (target within 2 %%)\n",
                    floor, fast_tps / slow_tps, 100 * loss_gap);
        write_chart(s, runs, floor);
        std::printf("report: %s, chart: %s\n", s.report.c_str(), s.chart.c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dtfm-demo: %s\n", e.what());
        return 1;
    }
}
