// dtfm-plan: places S pipeline stages × D data-parallel replicas on the devices of a topology file
// (DT-FM's scenario format). --objective dtfm minimises DT-FM's communication cost, with DT-FM's
// genetic algorithm or dtfm's annealing search. --objective time minimises the simulated iteration
// time of a GPT (dtfm::sim), choosing the placement, the compression of each link class and of the
// all-reduce, and the micro-batch count together, within device memory (sim::time_search).
// Writes the plan as JSON and prints it as a table.
//
//   dtfm-plan --topology FILE --stages S [--objective dtfm|time] [--search anneal|ga] [--seconds T]
//             [--iterations N] [--seed N] [--output FILE] [--c-dp GB] [--c-pp GB] [--random-start]
//   time:     [--model gpt3-1.3b|tiny|small] [--layers L] [--d-model D] [--heads H] [--sequence N]
//             [--vocab V] [--batch B] [--efficiency E] [--device-memory-gib G] [--codec-speedup X]
//
// Output: {"pipelines": [[device id of each stage] for each replica], "cost": {"dp", "pp", "total"}
// (time: {"total" = "iteration_seconds", "tokens_per_second", …}), with time also "compression" and
// "micro_batches", plus the run's settings and the trace of best costs over time}. With --iterations
// the plan is a function of the seed alone; with --seconds alone it also depends on how fast the
// machine is.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "dtfm/plan/cost_model.hpp"
#include "dtfm/plan/search.hpp"
#include "dtfm/plan/topology.hpp"
#include "dtfm/sim/time_search.hpp"

namespace {

struct options {
    std::string topology;
    int stages = 0;
    std::string objective = "dtfm";
    std::string search = "anneal";
    double seconds = 0;
    std::uint64_t iterations = 0;
    std::uint64_t seed = 1;
    std::string output;
    double c_dp_gb = dtfm::plan::cost_params{}.c_dp_gb;
    double c_pp_gb = dtfm::plan::cost_params{}.c_pp_gb;
    bool random_start = false;
    // --objective time
    std::string model = "gpt3-1.3b";
    int layers = 0, d_model = 0, heads = 0, sequence = 0, vocab = -1;  // 0 (vocab −1): the model's
    int batch = 1024;
    double efficiency = 0.3;
    double device_memory_gib = 0;  // 0: the topology's
    double codec_speedup = 1;
};

nlohmann::json to_json(const dtfm::plan::topology& t, const options& o, const dtfm::plan::search_result& r) {
    nlohmann::json trace = nlohmann::json::array();
    for (const auto& p : r.trace) trace.push_back({{"seconds", p.seconds}, {"iteration", p.iteration}, {"cost", p.cost}});
    return {
        {"topology", t.name()},
        {"stages", r.plan.stages()},
        {"replicas", r.plan.replicas()},
        {"objective", o.objective},
        {"search", o.search},
        {"seed", o.seed},
        {"c_dp_gb", o.c_dp_gb},
        {"c_pp_gb", o.c_pp_gb},
        {"pipelines", r.plan.pipelines},
        {"cost", {{"dp", r.cost.dp}, {"pp", r.cost.pp}, {"total", r.cost.total}}},
        {"iterations", r.iterations},
        {"seconds", r.seconds},
        {"trace", trace},
    };
}

void print_table(const dtfm::plan::topology& t, const options& o, const dtfm::plan::search_result& r) {
    std::printf("%s: %d stages x %d replicas, %s, seed %llu: %llu candidates in %.2f s\n",
                t.name().empty() ? o.topology.c_str() : t.name().c_str(), r.plan.stages(), r.plan.replicas(),
                o.search.c_str(), static_cast<unsigned long long>(o.seed),
                static_cast<unsigned long long>(r.iterations), r.seconds);
    std::printf("cost %.4f s = DP %.4f + 2 x PP %.4f\n", r.cost.total, r.cost.dp, r.cost.pp);
    std::printf("%-8s", "replica");
    for (int s = 0; s < r.plan.stages(); ++s) std::printf(" %7s", ("stage" + std::to_string(s)).c_str());
    std::printf("\n");
    for (int k = 0; k < r.plan.replicas(); ++k) {
        std::printf("%-8d", k);
        for (const int d : r.plan.pipelines[static_cast<std::size_t>(k)]) std::printf(" %7d", d);
        std::printf("\n");
    }
    // Regions of each stage group, when the file names them: where the data-parallel traffic goes.
    if (t.regions().size() > 1) {
        std::printf("regions of each stage group:\n");
        for (int s = 0; s < r.plan.stages(); ++s) {
            std::map<std::string, int> count;
            for (const int d : r.plan.stage_group(s)) ++count[t.devices()[static_cast<std::size_t>(d)].region];
            std::printf("  stage%-3d", s);
            for (const auto& [region, c] : count) std::printf(" %s x%d", region.c_str(), c);
            std::printf("\n");
        }
    }
}

dtfm::sim::gpt_config model_of(const options& o) {
    dtfm::sim::gpt_config m = o.model == "tiny"    ? dtfm::sim::gpt_config::tiny()
                              : o.model == "small" ? dtfm::sim::gpt_config::small()
                                                   : dtfm::sim::gpt_config::gpt3_1_3b();
    if (o.layers > 0) m.layers = o.layers;
    if (o.d_model > 0) m.d_model = o.d_model;
    if (o.heads > 0) m.heads = o.heads;
    if (o.sequence > 0) m.sequence = o.sequence;
    if (o.vocab >= 0) m.vocab = o.vocab;
    return m;
}

int run_time(const options& o, const dtfm::plan::topology& t) {
    if (o.search != "anneal") throw dtfm::config_error("--objective time has its own search; leave out --search ga");
    const dtfm::sim::gpt_config model = model_of(o);
    dtfm::sim::time_search_options so;
    so.seed = o.seed;
    so.seconds = o.seconds;
    so.evaluations = o.iterations;
    if (so.seconds == 0 && so.evaluations == 0) so.seconds = 10;
    so.global_batch = o.batch;
    so.efficiency = o.efficiency;
    if (o.device_memory_gib > 0) so.memory_gib = o.device_memory_gib;
    if (!(o.codec_speedup > 0)) throw dtfm::config_error("--codec-speedup must be > 0");
    so.rates.cast_quantize *= o.codec_speedup;
    so.rates.cocktail *= o.codec_speedup;
    const auto r = dtfm::sim::time_search(t, o.stages, model, so);
    const auto& sr = r.simulated;

    if (!o.output.empty()) {
        nlohmann::json trace = nlohmann::json::array();
        for (const auto& p : r.trace) trace.push_back({{"seconds", p.seconds}, {"iteration", p.iteration}, {"cost", p.cost}});
        nlohmann::json classes = nlohmann::json::array();
        for (std::size_t k = 0; k < so.classes.size(); ++k) {
            classes.push_back({{"class", so.classes[k].name},
                               {"min_gbps", so.classes[k].min_gbps},
                               {"forward", to_string(r.choice.forward[k])},
                               {"backward", to_string(r.choice.backward[k])}});
        }
        double allreduce = 0;
        for (double a : sr.allreduce_seconds) allreduce = std::max(allreduce, a);
        const nlohmann::json j = {
            {"topology", t.name()},
            {"stages", r.plan.stages()},
            {"replicas", r.plan.replicas()},
            {"objective", o.objective},
            {"seed", o.seed},
            {"model", {{"name", o.model}, {"layers", model.layers}, {"d_model", model.d_model}, {"heads", model.heads},
                       {"sequence", model.sequence}, {"vocab", model.vocab}}},
            {"global_batch", o.batch},
            {"efficiency", o.efficiency},
            {"pipelines", r.plan.pipelines()},
            {"cost", {{"total", sr.iteration_seconds},
                      {"iteration_seconds", sr.iteration_seconds},
                      {"pipeline_seconds", sr.pipeline_seconds},
                      {"allreduce_seconds", allreduce},
                      {"tokens_per_second", sr.tokens_per_second},
                      {"bubble_fraction", sr.bubble_fraction},
                      {"max_memory_gib", r.max_memory_gib}}},
            {"micro_batches", r.choice.microbatches},
            {"micro_batch_size", r.microbatch_size},
            {"compression", {{"pipeline", classes},
                             {"allreduce", to_string(r.choice.allreduce)},
                             {"allreduce_codec", r.choice.allreduce == dtfm::sim::allreduce_kind::ring
                                                     ? std::string("none")
                                                     : std::string(to_string(r.choice.allreduce_codec))}}},
            {"iterations", r.evaluations},
            {"simulations", r.simulations},
            {"seconds", r.seconds},
            {"trace", trace},
        };
        std::ofstream out(o.output);
        out << j.dump(1) << '\n';
        out.close();
        if (!out) throw dtfm::config_error(o.output + ": cannot write the plan");
    }

    std::printf("%s: %d stages x %d replicas, time objective, seed %llu: %llu candidates (%llu simulated) in %.2f s\n",
                t.name().empty() ? o.topology.c_str() : t.name().c_str(), r.plan.stages(), r.plan.replicas(),
                static_cast<unsigned long long>(o.seed), static_cast<unsigned long long>(r.evaluations),
                static_cast<unsigned long long>(r.simulations), r.seconds);
    std::printf("iteration %.4f s (pipeline %.4f s, bubble %.3f), %.0f tokens/s, at most %.2f GiB per device\n",
                sr.iteration_seconds, sr.pipeline_seconds, sr.bubble_fraction, sr.tokens_per_second, r.max_memory_gib);
    std::printf("choice: %s\n", dtfm::sim::describe(r.choice, so.classes, r.microbatch_size).c_str());
    std::printf("%-8s", "replica");
    for (int s = 0; s < r.plan.stages(); ++s) std::printf(" %7s", ("stage" + std::to_string(s)).c_str());
    std::printf("\n");
    for (int k = 0; k < r.plan.replicas(); ++k) {
        std::printf("%-8d", k);
        for (const int d : r.plan.pipelines()[static_cast<std::size_t>(k)]) std::printf(" %7d", d);
        std::printf("\n");
    }
    return 0;
}

int run(const options& o) {
    const dtfm::plan::topology t = dtfm::plan::load_topology(o.topology);
    if (o.objective == "time") return run_time(o, t);
    dtfm::plan::search_options so;
    so.seed = o.seed;
    so.seconds = o.seconds;
    so.iterations = o.iterations;
    if (so.seconds == 0 && so.iterations == 0) so.seconds = 10;
    so.costs = {o.c_dp_gb, o.c_pp_gb};
    dtfm::plan::anneal_options ao;
    ao.random_start = o.random_start;
    const dtfm::plan::search_result r = o.search == "ga" ? dtfm::plan::genetic_search(t, o.stages, so)
                                                         : dtfm::plan::anneal_search(t, o.stages, so, ao);
    if (!o.output.empty()) {
        std::ofstream out(o.output);
        out << to_json(t, o, r).dump(1) << '\n';
        out.close();
        if (!out) throw dtfm::config_error(o.output + ": cannot write the plan");
    }
    print_table(t, o, r);
    return 0;
}

// A number ≥ 0 and finite, written as the user typed it in the message.
const CLI::Validator non_negative(
    [](std::string& in) -> std::string {
        double v = 0;
        try {
            std::size_t used = 0;
            v = std::stod(in, &used);
            if (used != in.size()) return "'" + in + "' is not a number";
        } catch (const std::exception&) {
            return "'" + in + "' is not a number";
        }
        if (!std::isfinite(v) || v < 0) return in + " must be a finite number >= 0";
        return {};
    },
    "NUMBER >= 0");

// A whole number ≥ 0: an unsigned option would read -3 as 2^64 − 3.
const CLI::Validator whole(
    [](std::string& in) -> std::string {
        if (in.empty() || in.find_first_not_of("0123456789") != std::string::npos) {
            return "'" + in + "' is not a whole number >= 0";
        }
        return {};
    },
    "INTEGER >= 0");

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"dtfm-plan: place pipeline stages and data-parallel replicas on the devices of a topology"};
    options o;
    app.add_option("--topology", o.topology, "topology file (JSON: delay_ms, bandwidth_gbps, devices)")
        ->required();
    app.add_option("--stages", o.stages, "pipeline stages; must divide the device count")
        ->required()
        ->check(CLI::PositiveNumber);
    app.add_option("--objective", o.objective, "dtfm: DT-FM's communication cost; time: simulated iteration time")
        ->check(CLI::IsMember({"dtfm", "time"}))
        ->capture_default_str();
    app.add_option("--search", o.search, "anneal (dtfm's) or ga (DT-FM's genetic algorithm)")
        ->check(CLI::IsMember({"anneal", "ga"}))
        ->capture_default_str();
    app.add_option("--seconds", o.seconds, "time cap (default 10 when --iterations is not given)")
        ->check(non_negative);
    app.add_option("--iterations", o.iterations, "candidates to evaluate; the plan then depends only on the seed")
        ->check(whole);
    app.add_option("--seed", o.seed, "random seed")->check(whole)->capture_default_str();
    app.add_option("--output", o.output, "where to write the plan as JSON");
    app.add_option("--c-dp", o.c_dp_gb, "GB of gradient per stage (DT-FM: 0.65)")
        ->check(non_negative)
        ->capture_default_str();
    app.add_option("--c-pp", o.c_pp_gb, "GB of activations per tasklet (DT-FM: 0.471)")
        ->check(non_negative)
        ->capture_default_str();
    app.add_flag("--random-start", o.random_start, "anneal from random partitions only, without constructive starts");
    auto* time_flags = app.add_option_group("--objective time", "the model and the simulator's assumptions");
    time_flags->add_option("--model", o.model, "GPT shape: gpt3-1.3b (DT-FM's), or the host reference GPT's tiny or small")
        ->check(CLI::IsMember({"gpt3-1.3b", "tiny", "small"}))
        ->capture_default_str();
    time_flags->add_option("--layers", o.layers, "transformer blocks (overrides --model)")->check(CLI::PositiveNumber);
    time_flags->add_option("--d-model", o.d_model, "hidden size (overrides --model)")->check(CLI::PositiveNumber);
    time_flags->add_option("--heads", o.heads, "attention heads (overrides --model)")->check(CLI::PositiveNumber);
    time_flags->add_option("--sequence", o.sequence, "tokens per sequence (overrides --model)")->check(CLI::PositiveNumber);
    time_flags->add_option("--vocab", o.vocab, "vocabulary; 0: no embedding or head (overrides --model)")->check(CLI::NonNegativeNumber);
    time_flags->add_option("--batch", o.batch, "sequences per iteration over all replicas")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    time_flags->add_option("--efficiency", o.efficiency, "achieved fraction of each device's peak_tflops")
        ->check(CLI::Range(1e-6, 1.0))
        ->capture_default_str();
    time_flags->add_option("--device-memory-gib", o.device_memory_gib,
                           "every device's memory (default: the topology's memory_gib; 0 there: unchecked)")
        ->check(non_negative);
    time_flags->add_option("--codec-speedup", o.codec_speedup, "multiplies the host codec throughputs (15 GB/s, cocktail 7 GB/s)")
        ->check(CLI::Range(1e-3, 1e6))
        ->capture_default_str();
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        return run(o);
    } catch (const dtfm::config_error& e) {
        std::fprintf(stderr, "dtfm-plan: %s\n", e.what());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dtfm-plan: error: %s\n", e.what());
    }
    return 1;
}
