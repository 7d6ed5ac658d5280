// dtfm-plan: places S pipeline stages × D data-parallel replicas on the devices of a topology file
// (DT-FM's scenario format) to minimise DT-FM's communication cost, with DT-FM's genetic algorithm
// or dtfm's annealing search; writes the plan as JSON and prints it as a table.
//
//   dtfm-plan --topology FILE --stages S [--objective dtfm] [--search anneal|ga] [--seconds T]
//             [--iterations N] [--seed N] [--output FILE] [--c-dp GB] [--c-pp GB] [--random-start]
//
// Output: {"pipelines": [[device id of each stage] for each replica], "cost": {"dp", "pp", "total"},
// plus the run's settings and the trace of best costs over time}. With --iterations the plan is a
// function of the seed alone; with --seconds alone it also depends on how fast the machine is.
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

int run(const options& o) {
    if (o.objective == "time") {
        throw dtfm::config_error(
            "--objective time needs the iteration-time simulator (dtfm::sim), which is not available yet; "
            "use --objective dtfm");
    }
    const dtfm::plan::topology t = dtfm::plan::load_topology(o.topology);
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
