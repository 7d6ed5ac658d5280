// plan::search: the exact pieces (bottleneck matching, Held–Karp) against brute force, incremental
// swap costs against a fresh evaluation, both searches against every placement of small clusters,
// determinism for a seed, the DT-FM scenarios, and bad calls.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "dtfm/detail/plan_partition.hpp"
#include "dtfm/plan/cost_model.hpp"
#include "dtfm/plan/search.hpp"
#include "dtfm/plan/topology.hpp"

#ifndef DTFM_SCENARIO_DIR
#define DTFM_SCENARIO_DIR ""
#endif

using Catch::Matchers::Contains;
using dtfm::plan::communication_cost;
using dtfm::plan::placement;
using dtfm::plan::search_method;
using dtfm::plan::search_options;
using dtfm::plan::topology;
namespace detail = dtfm::plan::detail;

namespace {

// n devices in two sites with random, asymmetric links: fast inside a site, slow across.
topology random_topology(int n, std::uint64_t seed) {
    detail::rng r(seed);
    std::vector<double> delay(static_cast<std::size_t>(n * n)), bandwidth(delay.size());
    std::vector<dtfm::plan::device> devices;
    for (int i = 0; i < n; ++i) {
        devices.push_back({"gpu" + std::to_string(i), i < n / 2 ? "a" : "b", "", 0, 0});
        for (int j = 0; j < n; ++j) {
            const bool near = (i < n / 2) == (j < n / 2);
            const auto k = static_cast<std::size_t>(i * n + j);
            delay[k] = (near ? 1 : 40) * (0.5 + r.uniform01());
            bandwidth[k] = (near ? 10 : 0.5) * (0.5 + r.uniform01());
        }
    }
    return topology::from_matrices(std::move(devices), std::move(delay), std::move(bandwidth), "random");
}

// The least cost over every placement of `stages` stages on all of t's devices.
double brute_force(const topology& t, int stages) {
    std::vector<int> perm(static_cast<std::size_t>(t.size()));
    std::iota(perm.begin(), perm.end(), 0);
    const int replicas = t.size() / stages;
    double best = detail::infinity;
    do {
        placement p;
        for (int r = 0; r < replicas; ++r) {
            p.pipelines.emplace_back(perm.begin() + r * stages, perm.begin() + (r + 1) * stages);
        }
        best = std::min(best, communication_cost(t, p).total);
    } while (std::next_permutation(perm.begin(), perm.end()));
    return best;
}

void check_same_plan(const dtfm::plan::search_result& a, const dtfm::plan::search_result& b) {
    CHECK(a.plan.pipelines == b.plan.pipelines);
    CHECK(a.cost.total == b.cost.total);
    CHECK(a.iterations == b.iterations);
}

}  // namespace

TEST_CASE("search: bottleneck matching equals brute force over permutations", "[plan][search]") {
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        const topology t = random_topology(10, seed);
        const detail::link_tables lt(t, 2, {});  // groups of 5
        detail::bottleneck_matcher m;
        const std::vector<int> from{0, 3, 5, 7, 9}, to{1, 2, 4, 6, 8};
        std::vector<int> perm{0, 1, 2, 3, 4};
        double best = detail::infinity;
        do {
            double worst = 0;
            for (std::size_t i = 0; i < 5; ++i) {
                worst = std::max(worst, lt.pp[lt.at(from[i], to[static_cast<std::size_t>(perm[i])])]);
            }
            best = std::min(best, worst);
        } while (std::next_permutation(perm.begin(), perm.end()));
        std::vector<int> match;
        CHECK(m.solve(lt, from.data(), to.data(), &match) == best);
        double worst = 0;
        for (std::size_t i = 0; i < 5; ++i) {
            worst = std::max(worst, lt.pp[lt.at(from[i], to[static_cast<std::size_t>(match[i])])]);
        }
        CHECK(worst == best);
        std::sort(match.begin(), match.end());
        CHECK(match == std::vector<int>{0, 1, 2, 3, 4});
    }
}

TEST_CASE("search: Held-Karp finds the cheapest open path, the order included", "[plan][search]") {
    detail::rng r(3);
    detail::path_solver p;
    for (int S : {1, 2, 3, 5, 7}) {
        const auto s = static_cast<std::size_t>(S);
        std::vector<double> w(s * s);
        for (auto& x : w) x = r.uniform01();
        std::vector<int> perm(s);
        std::iota(perm.begin(), perm.end(), 0);
        double best = detail::infinity;
        auto length = [&](const std::vector<int>& o) {
            double sum = 0;
            for (std::size_t k = 0; k + 1 < o.size(); ++k) {
                sum += w[static_cast<std::size_t>(o[k]) * s + static_cast<std::size_t>(o[k + 1])];
            }
            return sum;
        };
        do best = std::min(best, length(perm));
        while (std::next_permutation(perm.begin(), perm.end()));
        std::vector<int> order;
        const double got = p.solve(w, S, &order);
        CHECK(got == Approx(best).epsilon(1e-12));
        CHECK(length(order) == Approx(best).epsilon(1e-12));
        std::sort(order.begin(), order.end());
        CHECK(order == std::vector<int>(perm.begin(), perm.end()));
    }
    // Above 16 groups the order is heuristic but still visits every group once.
    std::vector<double> w(20 * 20);
    for (auto& x : w) x = r.uniform01();
    std::vector<int> order;
    const double got = p.solve(w, 20, &order);
    CHECK(got < 19.0);
    std::sort(order.begin(), order.end());
    for (int k = 0; k < 20; ++k) CHECK(order[static_cast<std::size_t>(k)] == k);
}

TEST_CASE("search: incremental swap costs equal a fresh evaluation", "[plan][search]") {
    const topology t = random_topology(24, 11);
    for (int stages : {3, 4, 6}) {
        const detail::link_tables lt(t, stages, {});
        detail::partition_state st(lt), fresh(lt);
        detail::rng r(5);
        st.randomize(r);
        for (int k = 0; k < 200; ++k) {
            const int a = r.below(24);
            int b = r.below(24);
            if (st.group_of()[static_cast<std::size_t>(a)] == st.group_of()[static_cast<std::size_t>(b)]) continue;
            const double c = st.try_swap(a, b, detail::infinity);
            std::vector<int> g = st.group_of();
            std::swap(g[static_cast<std::size_t>(a)], g[static_cast<std::size_t>(b)]);
            fresh.assign(g);
            CHECK(c == Approx(fresh.total()).epsilon(1e-12));
            if (r.below(2) == 0) {
                st.commit_swap();
                CHECK(st.total() == Approx(fresh.total()).epsilon(1e-12));
            }
        }
        // The placement built from the partition has the partition's cost.
        CHECK(communication_cost(t, st.to_placement()).total == Approx(st.total()).epsilon(1e-12));
    }
}

TEST_CASE("search: both searches find the best placement of 8 devices", "[plan][search]") {
    for (int stages : {2, 4}) {
        const topology t = random_topology(8, static_cast<std::uint64_t>(stages));
        const double best = brute_force(t, stages);
        search_options o;
        o.iterations = 20000;
        for (const auto m : {search_method::genetic, search_method::anneal}) {
            const auto r = dtfm::plan::search(t, stages, m, o);
            INFO(to_string(m) << " on " << stages << " stages");
            CHECK(r.cost.total == Approx(best).epsilon(1e-12));
            CHECK(r.plan.stages() == stages);
            CHECK(r.plan.replicas() == 8 / stages);
            REQUIRE_FALSE(r.trace.empty());
            CHECK(r.trace.back().cost == Approx(r.cost.total).epsilon(1e-12));
            for (std::size_t k = 1; k < r.trace.size(); ++k) CHECK(r.trace[k].cost < r.trace[k - 1].cost);
        }
    }
}

TEST_CASE("search: the same seed and iteration budget give the same plan", "[plan][search]") {
    const topology t = random_topology(24, 2);
    search_options o;
    o.iterations = 3000;
    for (const auto m : {search_method::genetic, search_method::anneal}) {
        o.seed = 42;
        const auto a = dtfm::plan::search(t, 4, m, o);
        const auto b = dtfm::plan::search(t, 4, m, o);
        check_same_plan(a, b);
        CHECK(a.iterations == 3000);
        // A time cap far above the run's length does not change it.
        o.seconds = 1000;
        check_same_plan(a, dtfm::plan::search(t, 4, m, o));
        o.seconds = 0;
    }
}

TEST_CASE("search: annealing reaches DT-FM's best known costs on the scenarios", "[plan][search][scenario]") {
    REQUIRE_FALSE(std::string_view(DTFM_SCENARIO_DIR).empty());
    // DT-FM's best costs, as published to two decimals.
    const std::vector<std::pair<std::string, double>> cases{{"dtfm-case1-datacenter-ondemand", 3.44},
                                                            {"dtfm-case3-multi-datacenter", 16.08},
                                                            {"dtfm-case5-worldwide", 49.20}};
    for (const auto& [stem, target] : cases) {
        const topology t = dtfm::plan::load_topology(std::filesystem::path(DTFM_SCENARIO_DIR) / (stem + ".json"));
        search_options o;
        o.iterations = 5000;
        const auto r = dtfm::plan::anneal_search(t, 8, o);
        INFO(stem);
        CHECK(r.cost.total < target + 0.005);
        CHECK(communication_cost(t, r.plan).total == r.cost.total);
    }
}

TEST_CASE("search: bad calls are config_errors", "[plan][search]") {
    const topology t = random_topology(8, 1);
    search_options o;
    o.iterations = 10;
    auto error_of = [&](int stages, const search_options& opt) {
        try {
            (void)dtfm::plan::anneal_search(t, stages, opt);
        } catch (const dtfm::config_error& e) {
            return std::string(e.what());
        }
        FAIL("accepted");
        return std::string();
    };
    CHECK_THAT(error_of(3, o), Contains("8 devices do not split into 3 equal stages"));
    CHECK_THAT(error_of(0, o), Contains("at least 1 stage"));
    CHECK_THAT(error_of(2, search_options{}), Contains("no budget"));
    search_options negative;
    negative.seconds = -1;
    CHECK_THAT(error_of(2, negative), Contains("seconds = -1"));
    // One stage or one replica: nothing to search, still a valid plan.
    CHECK(dtfm::plan::anneal_search(t, 1, o).plan.replicas() == 8);
    CHECK(dtfm::plan::anneal_search(t, 8, o).plan.stages() == 8);
    CHECK(dtfm::plan::genetic_search(t, 8, o).plan.stages() == 8);
}

TEST_CASE("search: a time cap holds when one candidate is slow", "[plan][search]") {
    // 16 stages: every exact evaluation runs Held-Karp over 2^16 subsets, milliseconds each.
    const topology t = random_topology(32, 9);
    search_options o;
    o.seconds = 0.05;
    for (const auto m : {search_method::genetic, search_method::anneal}) {
        const auto r = dtfm::plan::search(t, 16, m, o);
        INFO(to_string(m));
        CHECK(r.seconds < 3.0);
        CHECK(r.plan.stages() == 16);
        CHECK(communication_cost(t, r.plan).total == r.cost.total);
    }
}
