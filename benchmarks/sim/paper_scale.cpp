// dtfm_sim_paper: the paper-scale table of issue 7 point 8, from the simulator. GPT-3-1.3B (24
// layers, d 2048, 16 heads, sequence 2048), global batch 1024 sequences, 8 stages × 8 replicas on
// the five DT-FM scenarios; simulated tokens/s for
//   (a) uncompressed, a random placement (seeded),
//   (b) uncompressed, a placement from a small local search on simulated time,
//   (c) dtfm: placement, per-link-class activation compression, data-parallel all-reduce and
//       micro-batch count chosen together on simulated time, within device memory, by the
//       planner's time objective (sim::time_search, what `dtfm-plan --objective time` runs),
//       started from (b)'s placement as well as its own starts.
// The swap search for (b) is deliberately minimal and internal to this tool.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "dtfm/compress/cast.hpp"
#include "dtfm/compress/cocktail.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/error.hpp"
#include "dtfm/plan/topology.hpp"
#include "dtfm/sim/simulator.hpp"
#include "dtfm/sim/time_search.hpp"

namespace {

using namespace dtfm;

// Encode (and decode) throughputs of the host codecs measured by dtfm_bench_compress on one core
// at 16M values (docs/benchmarks.md): fp16, q8 and q4 run at about memcpy speed, cocktail slower.
// --codec-speedup multiplies both (a GPU kernel would run several times faster).
double cast_quantize_bytes_per_s = 15e9;
double cocktail_bytes_per_s = 7e9;

constexpr int stages = 8;
constexpr int global_batch = 1024;

sim::codec make_codec(int which) {
    switch (which) {
    case 1: return sim::codec::of("fp16", compress::cast<compress::fp16>(), cast_quantize_bytes_per_s);
    case 2: return sim::codec::of("q8", compress::quantize<8>(), cast_quantize_bytes_per_s);
    case 3: return sim::codec::of("q4", compress::quantize<4>(), cast_quantize_bytes_per_s);
    default: return sim::codec::none();
    }
}

// Link classes by bandwidth: inside an instance (>= 25 Gbit/s), inside a region or data centre
// (>= 1.5 Gbit/s), across regions (slower).
constexpr double class_gbps[3] = {25, 1.5, 0};
const char* class_name[3] = {"fast", "regional", "wan"};

struct config {
    int microbatch_size = 1;
    int forward[3] = {0, 0, 0};   // codec per link class: 0 none, 1 fp16, 2 q8, 3 q4
    int backward[3] = {0, 0, 0};  // 0 none, 1 fp16, 2 q8 (AC-SGD keeps gradients at 6–8 bits)
    sim::allreduce_kind allreduce = sim::allreduce_kind::ring;

    std::string describe() const {
        static const char* names[] = {"none", "fp16", "q8", "q4"};
        std::string s = "b=" + std::to_string(microbatch_size) + ", M=" + std::to_string(global_batch / 8 / microbatch_size);
        for (int c = 0; c < 3; ++c)
            s += std::string(", ") + class_name[c] + " " + names[forward[c]] + "/" + names[backward[c]];
        s += std::string(", DP ") + sim::to_string(allreduce) + (allreduce == sim::allreduce_kind::ring ? "" : "+cocktail");
        return s;
    }
};

struct problem {
    const plan::topology* topology;
    sim::gpt_config model;
    double efficiency;
    long evaluations = 0;

    // Simulated tokens/s, or 0 where the plan does not fit memory.
    double score(const strategy::mesh_placement& p, const config& c) {
        ++evaluations;
        try {
            return run(p, c).tokens_per_second;
        } catch (const config_error&) {
            return 0;
        }
    }

    sim::iteration_result run(const strategy::mesh_placement& p, const config& c) const {
        sim::gpt_config m = model;
        m.microbatch_size = c.microbatch_size;
        sim::sim_options o;
        o.efficiency = efficiency;
        o.microbatches = global_batch / p.replicas() / c.microbatch_size;
        for (int k = 0; k < 3; ++k)
            o.pipeline_links.push_back({class_gbps[k], make_codec(c.forward[k]), make_codec(c.backward[k])});
        o.allreduce = c.allreduce;
        o.allreduce_codec = sim::codec::of("cocktail", compress::cocktail<>(), cocktail_bytes_per_s);
        return sim::simulate<schedule::one_f_one_b>(*topology, p, m, o);
    }
};

using grid = std::vector<std::vector<int>>;

strategy::mesh_placement random_placement(int devices, std::mt19937_64& rng) {
    std::vector<int> perm(static_cast<std::size_t>(devices));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    grid g(static_cast<std::size_t>(devices / stages));
    for (std::size_t i = 0; i < perm.size(); ++i) g[i / stages].push_back(perm[i]);
    return strategy::mesh_placement(g);
}

// First-improvement local search over swaps of two devices, `evaluations` simulations long (a count,
// not a time, so the table is the same for a seed on any machine).
strategy::mesh_placement local_search(problem& pr, strategy::mesh_placement best, const config& c, double& best_score,
                                      long evaluations, std::mt19937_64& rng) {
    grid g = best.pipelines();
    const int replicas = static_cast<int>(g.size());
    std::uniform_int_distribution<int> pick_r(0, replicas - 1), pick_s(0, stages - 1);
    for (long i = 0; i < evaluations; ++i) {
        const int r1 = pick_r(rng), s1 = pick_s(rng), r2 = pick_r(rng), s2 = pick_s(rng);
        if (r1 == r2 && s1 == s2) {
            --i;
            continue;
        }
        std::swap(g[std::size_t(r1)][std::size_t(s1)], g[std::size_t(r2)][std::size_t(s2)]);
        strategy::mesh_placement candidate(g);
        const double s = pr.score(candidate, c);
        if (s > best_score) {
            best_score = s;
            best = std::move(candidate);
        } else {
            std::swap(g[std::size_t(r1)][std::size_t(s1)], g[std::size_t(r2)][std::size_t(s2)]);
        }
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    std::filesystem::path dir = DTFM_SCENARIO_DIR;
    long evaluations = 400;
    unsigned long long seed = 1;
    double efficiency = 0.3;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        if (flag == "--scenarios") dir = argv[i + 1];
        else if (flag == "--evaluations") evaluations = std::atol(argv[i + 1]);
        else if (flag == "--seed") seed = std::strtoull(argv[i + 1], nullptr, 10);
        else if (flag == "--efficiency") efficiency = std::atof(argv[i + 1]);
        else if (flag == "--codec-speedup") {
            const double x = std::atof(argv[i + 1]);
            cast_quantize_bytes_per_s *= x;
            cocktail_bytes_per_s *= x;
        }
        else {
            std::fprintf(stderr, "usage: %s [--scenarios DIR] [--evaluations N] [--seed N] [--efficiency E] [--codec-speedup X]\n", argv[0]);
            return 2;
        }
    }
    const char* files[] = {"dtfm-case1-datacenter-ondemand.json", "dtfm-case2-datacenter-spot.json",
                           "dtfm-case3-multi-datacenter.json", "dtfm-case4-regional.json", "dtfm-case5-worldwide.json"};
    struct row {
        std::string name;
        double a, b, c;
        std::string config;
        long evaluations;
    };
    std::vector<row> rows;
    try {
        for (const char* f : files) {
            const auto t = plan::load_topology(dir / f);
            problem pr{&t, sim::gpt_config::gpt3_1_3b(), efficiency};
            std::mt19937_64 rng(seed);
            const config plain;

            const auto random = random_placement(t.size(), rng);
            const double a = pr.score(random, plain);

            // (b): the better of device order and the random placement, improved by swaps.
            auto start = sim::default_placement(t, stages);
            double b = pr.score(start, plain);
            if (a > b) {
                start = random;
                b = a;
            }
            const auto placed = local_search(pr, start, plain, b, evaluations, rng);

            // (c): the planner's time objective, from (b)'s placement and its own starts, with
            // 3 × --evaluations candidates (a count, so the result is the same on any machine).
            sim::time_search_options so;
            so.seed = seed;
            so.evaluations = static_cast<std::uint64_t>(3 * evaluations);
            so.global_batch = global_batch;
            so.efficiency = efficiency;
            so.rates = {cast_quantize_bytes_per_s, cocktail_bytes_per_s};
            so.start = placed;
            const auto found = sim::time_search(t, stages, pr.model, so);
            const double c = found.simulated.tokens_per_second;
            const std::string chosen = sim::describe(found.choice, so.classes, found.microbatch_size);
            pr.evaluations += static_cast<long>(found.simulations);

            rows.push_back({t.name(), a, b, c, chosen, pr.evaluations});
            std::fprintf(stderr, "%s: a %.0f, b %.0f, c %.0f tokens/s (%s; %ld simulations)\n", t.name().c_str(), a, b, c,
                         chosen.c_str(), pr.evaluations);
            const auto& detail = found.simulated;
            std::fprintf(stderr, "  (c): iteration %.2f s, pipeline %.2f s, bubble %.3f, all-reduce of stage 0 %.2f s;"
                                 " the critical path ends with:\n", detail.iteration_seconds, detail.pipeline_seconds,
                         detail.bubble_fraction, detail.allreduce_seconds[0]);
            const auto& path = detail.critical_path;
            for (std::size_t i = path.size() > 3 ? path.size() - 3 : 0; i < path.size(); ++i)
                std::fprintf(stderr, "    %.3f-%.3f s  %s: %s\n", path[i].start, path[i].end, path[i].resource.c_str(),
                             path[i].what.c_str());
        }
    } catch (const dtfm::error& e) {
        std::fprintf(stderr, "dtfm_sim_paper: %s\n", e.what());
        return 1;
    }

    std::printf("| scenario | (a) uncompressed, random | (b) uncompressed, searched | (c) dtfm | (c) choices |\n");
    std::printf("|---|---|---|---|---|\n");
    for (const auto& r : rows) {
        std::printf("| %s | %.0f (%.2f×) | %.0f (%.2f×) | %.0f (%.2f×) | %s |\n", r.name.c_str(), r.a, rows[0].a / r.a, r.b,
                    rows[0].b / r.b, r.c, rows[0].c / r.c, r.config.c_str());
    }
    std::printf("\nTokens/s; in brackets, how many times slower than case 1 in the same column.\n");
    return 0;
}
