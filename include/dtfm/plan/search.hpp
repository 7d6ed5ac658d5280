// plan::search: placements of S pipeline stages × D data-parallel replicas on n = S·D devices that
// minimise DT-FM's communication cost (dtfm/plan/cost_model.hpp). Both searches explore balanced
// partitions of the devices into stage groups; for each partition the pipelines are exact (bottleneck
// matchings between consecutive groups, group order by Held–Karp).
//   genetic_search: DT-FM's hybrid genetic algorithm (Yuan et al., NeurIPS 2022), seeded.
//   anneal_search:  simulated annealing over swaps of two devices, with incremental cost updates.
// Deterministic for a seed and an iteration budget. A time budget caps the run: where it stops
// depends on the machine's speed, but the path up to there does not.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dtfm/detail/plan_partition.hpp"
#include "dtfm/error.hpp"
#include "dtfm/plan/cost_model.hpp"
#include "dtfm/plan/topology.hpp"

namespace dtfm::plan {

struct search_options {
    std::uint64_t seed = 1;
    double seconds = 0;            // wall-clock cap; 0: none
    std::uint64_t iterations = 0;  // candidates evaluated (swaps tried, or GA children); 0: none
    cost_params costs{};
};

// The best cost so far, recorded each time it improves.
struct trace_point {
    double seconds = 0;
    std::uint64_t iteration = 0;
    double cost = 0;
};

struct search_result {
    placement plan;
    cost_breakdown cost;            // of plan, recomputed by communication_cost
    std::uint64_t iterations = 0;   // done
    double seconds = 0;             // taken
    std::vector<trace_point> trace;
};

enum class search_method { genetic, anneal };

inline std::string_view to_string(search_method m) noexcept { return m == search_method::genetic ? "ga" : "anneal"; }

}  // namespace dtfm::plan

namespace dtfm::plan::detail {

// Budget, clock and trace shared by both searches. The clock is read about every millisecond: the
// stride between reads follows the measured cost of a candidate (a microsecond on 64 devices in 8
// stages, far more with 16 stages of 16), so a time cap is kept without reading the clock per swap.
class search_run {
public:
    search_run(const topology& t, int stages, const search_options& o)
        : options_(o), start_(std::chrono::steady_clock::now()) {
        check_stages(t, stages);
        check_cost_params(o.costs);
        if (!std::isfinite(o.seconds) || o.seconds < 0) {
            dtfm::detail::fail("search", "seconds = ", dtfm::detail::format_number(o.seconds),
                               ": must be non-negative and finite");
        }
        if (o.seconds == 0 && o.iterations == 0) {
            dtfm::detail::fail("search", "no budget: give seconds, iterations or both");
        }
    }

    double elapsed() const {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    }

    // Counts one candidate; false once the budget is spent.
    bool next() {
        if (done_) return false;
        ++count_;
        if (options_.iterations != 0 && count_ >= options_.iterations) done_ = true;
        if (options_.seconds > 0 && count_ >= next_check_) {
            const double now = elapsed();
            if (now >= options_.seconds) done_ = true;
            const double per = (now - last_check_) / static_cast<double>(count_ - last_count_);
            const double stride = per > 0 ? 1e-3 / per : 1024.0;
            next_check_ = count_ + static_cast<std::uint64_t>(std::clamp(stride, 1.0, 1024.0));
            last_check_ = now;
            last_count_ = count_;
        }
        return true;
    }
    bool done() const noexcept { return done_; }
    std::uint64_t count() const noexcept { return count_; }

    // Records cost if it beats the best so far; true when it does.
    bool offer(double cost) {
        if (cost < best_ - 1e-12 * std::abs(best_) || trace_.empty()) {
            best_ = cost;
            trace_.push_back({elapsed(), count_, cost});
            return true;
        }
        return false;
    }
    double best() const noexcept { return best_; }

    search_result finish(const topology& t, placement p) {
        search_result r;
        r.cost = communication_cost(t, p, options_.costs);
        r.plan = std::move(p);
        r.iterations = count_;
        r.seconds = elapsed();
        r.trace = std::move(trace_);
        return r;
    }

private:
    search_options options_;
    std::chrono::steady_clock::time_point start_;
    std::uint64_t count_ = 0;
    std::uint64_t next_check_ = 1, last_count_ = 0;
    double last_check_ = 0;
    bool done_ = false;
    double best_ = infinity;
    std::vector<trace_point> trace_;
};

// The cyclic-move local search of DT-FM's GA, with cycles of length two: every unlocked device in
// turn is swapped with the unlocked device of another group that lowers the cost most, and both are
// locked for the rest of the pass; passes repeat while one improves.
inline void local_search(partition_state& st, search_run& run, rng& r) {
    const int n = st.devices();
    std::vector<int> order(static_cast<std::size_t>(n));
    std::vector<char> locked(static_cast<std::size_t>(n));
    for (bool improved = true; improved && !run.done();) {
        improved = false;
        for (int d = 0; d < n; ++d) order[static_cast<std::size_t>(d)] = d;
        r.shuffle(order);
        std::fill(locked.begin(), locked.end(), 0);
        for (const int a : order) {
            if (locked[static_cast<std::size_t>(a)]) continue;
            double best = st.total() - 1e-12 * st.total();
            int best_b = -1;
            for (int b = 0; b < n && !run.done(); ++b) {
                if (locked[static_cast<std::size_t>(b)] || st.group_of()[static_cast<std::size_t>(b)] ==
                                                               st.group_of()[static_cast<std::size_t>(a)]) {
                    continue;
                }
                (void)run.next();
                const double c = st.try_swap(a, b, best);
                if (c < best) {
                    best = c;
                    best_b = b;
                }
            }
            if (best_b >= 0) {
                (void)st.try_swap(a, best_b, infinity);
                st.commit_swap();
                locked[static_cast<std::size_t>(a)] = locked[static_cast<std::size_t>(best_b)] = 1;
                improved = true;
            }
            if (run.done()) return;
        }
    }
}

// Five-point crossover of two group labellings (parent b's groups renamed to overlap parent a's
// most), then moves of random devices from over-full to under-full groups to restore balance.
inline std::vector<int> crossover(const std::vector<int>& a, const std::vector<int>& b, int S, int D, rng& r) {
    const auto n = a.size();
    const auto s = static_cast<std::size_t>(S);
    std::vector<int> overlap(s * s, 0);
    for (std::size_t d = 0; d < n; ++d) ++overlap[static_cast<std::size_t>(b[d]) * s + static_cast<std::size_t>(a[d])];
    std::vector<int> rename(s, -1);
    std::vector<char> taken(s, 0);
    for (std::size_t k = 0; k < s; ++k) {
        int best = -1;
        std::size_t bi = 0, bj = 0;
        for (std::size_t i = 0; i < s; ++i) {
            if (rename[i] >= 0) continue;
            for (std::size_t j = 0; j < s; ++j) {
                if (!taken[j] && overlap[i * s + j] > best) {
                    best = overlap[i * s + j];
                    bi = i;
                    bj = j;
                }
            }
        }
        rename[bi] = static_cast<int>(bj);
        taken[bj] = 1;
    }

    std::vector<std::size_t> cuts;
    const int points = std::min<int>(5, static_cast<int>(n) - 1);
    while (static_cast<int>(cuts.size()) < points) {
        const auto c = static_cast<std::size_t>(1 + r.below(static_cast<int>(n) - 1));
        if (std::find(cuts.begin(), cuts.end(), c) == cuts.end()) cuts.push_back(c);
    }
    std::sort(cuts.begin(), cuts.end());
    std::vector<int> child(n);
    bool from_a = true;
    std::size_t next_cut = 0;
    for (std::size_t d = 0; d < n; ++d) {
        if (next_cut < cuts.size() && d == cuts[next_cut]) {
            from_a = !from_a;
            ++next_cut;
        }
        child[d] = from_a ? a[d] : rename[static_cast<std::size_t>(b[d])];
    }

    std::vector<std::vector<int>> members(s);
    for (std::size_t d = 0; d < n; ++d) members[static_cast<std::size_t>(child[d])].push_back(static_cast<int>(d));
    std::vector<int> spare;
    for (auto& m : members) {
        while (static_cast<int>(m.size()) > D) {
            const auto i = static_cast<std::size_t>(r.below(static_cast<int>(m.size())));
            spare.push_back(m[i]);
            m[i] = m.back();
            m.pop_back();
        }
    }
    r.shuffle(spare);
    for (std::size_t g = 0; g < s; ++g) {
        while (static_cast<int>(members[g].size()) < D) {
            const int d = spare.back();
            spare.pop_back();
            members[g].push_back(d);
            child[static_cast<std::size_t>(d)] = static_cast<int>(g);
        }
    }
    return child;
}

}  // namespace dtfm::plan::detail

namespace dtfm::plan {

// DT-FM's hybrid genetic algorithm: `population` random partitions, each improved by local search,
// then children by five-point crossover of two parents (each the better of two drawn at random),
// improved by local search. A child replaces the worse of its parents if it beats it, else the
// worst of the population if it beats that (DT-FM's code compared with one parent only). Stops
// after `offspring` children or at the budget (iterations count swaps evaluated).
struct genetic_options {
    int population = 100;
    int offspring = 4900;
};

inline search_result genetic_search(const topology& t, int stages, const search_options& o,
                                    const genetic_options& g = {}) {
    detail::search_run run(t, stages, o);
    if (g.population < 2 || g.offspring < 0) {
        dtfm::detail::fail("genetic_search", "population = ", std::to_string(g.population), ", offspring = ",
                           std::to_string(g.offspring), ": need a population of at least 2");
    }
    const detail::link_tables lt(t, stages, o.costs);
    detail::rng r(o.seed);
    detail::partition_state st(lt);
    std::vector<std::vector<int>> pop;
    std::vector<double> cost;
    std::vector<int> best_groups;
    auto keep_best = [&] {
        if (run.offer(st.total())) best_groups = st.group_of();
    };

    for (int i = 0; i < g.population && (i == 0 || !run.done()); ++i) {
        st.randomize(r);
        keep_best();
        detail::local_search(st, run, r);
        keep_best();
        pop.push_back(st.group_of());
        cost.push_back(st.total());
    }
    auto pick = [&] {
        const auto x = static_cast<std::size_t>(r.below(static_cast<int>(pop.size())));
        const auto y = static_cast<std::size_t>(r.below(static_cast<int>(pop.size())));
        return cost[x] <= cost[y] ? x : y;
    };
    for (int k = 0; k < g.offspring && !run.done() && pop.size() >= 2; ++k) {
        const std::size_t p1 = pick();
        std::size_t p2 = pick();
        for (int tries = 0; p2 == p1 && tries < 8; ++tries) p2 = pick();
        if (p2 == p1) p2 = (p1 + 1) % pop.size();
        st.assign(detail::crossover(pop[p1], pop[p2], stages, lt.group_size, r));
        detail::local_search(st, run, r);
        keep_best();
        const std::size_t worse = cost[p1] >= cost[p2] ? p1 : p2;
        const auto worst = static_cast<std::size_t>(std::max_element(cost.begin(), cost.end()) - cost.begin());
        const std::size_t out = st.total() < cost[worse] ? worse : worst;
        if (st.total() < cost[out]) {
            pop[out] = st.group_of();
            cost[out] = st.total();
        }
    }
    st.assign(best_groups);
    return run.finish(t, st.to_placement());
}

// Simulated annealing over swaps of two devices of different groups, Metropolis acceptance,
// geometric cooling over rounds of `round_moves` swaps. The first three rounds start from a chain
// start, a group start (partition_state) and a random partition; of the later ones, every third from
// a fresh chain start at the first temperature and the others from the best found, cooler each time. The temperature scale is the mean cost rise of a sample of random
// swaps from the chain start, so it follows the scenario.
// A swap whose DP term alone already fails the acceptance test is refused before any matching is
// solved, which makes most refused swaps O(D).
struct anneal_options {
    std::uint64_t round_moves = 20000;
    double start_temperature = 1;    // × the mean cost rise of a random swap
    double end_temperature = 1e-3;   // × the same
    double reheat = 0.5;             // start temperature of each later round, × the previous one
    bool random_start = false;       // the first rounds from random partitions only (to measure the
                                     // annealing without the constructive starts)
};

inline search_result anneal_search(const topology& t, int stages, const search_options& o,
                                   const anneal_options& a = {}) {
    detail::search_run run(t, stages, o);
    if (a.round_moves == 0 || !(a.start_temperature > 0) || !(a.end_temperature > 0) || !(a.reheat > 0)) {
        dtfm::detail::fail("anneal_search", "round_moves and the temperatures must be positive");
    }
    const detail::link_tables lt(t, stages, o.costs);
    detail::rng r(o.seed);
    detail::partition_state st(lt);
    st.chain_start(r);
    const int S = stages, D = lt.group_size;
    if (S == 1 || D == 1) {  // every partition costs the same
        (void)run.offer(st.total());
        return run.finish(t, st.to_placement());
    }

    auto random_pair = [&](int& x, int& y) {
        x = r.below(lt.n);
        const int g = st.group_of()[static_cast<std::size_t>(x)];
        int h = r.below(S - 1);
        if (h >= g) ++h;
        y = st.group(h)[r.below(D)];
    };

    // Scale: the mean rise over random swaps from the chain start (a good partition, so the rise
    // is what leaving a good basin costs).
    double rise = 0;
    int rises = 0;
    for (int i = 0; i < 32 && run.next(); ++i) {
        int x = 0, y = 0;
        random_pair(x, y);
        const double c = st.try_swap(x, y, detail::infinity);
        if (c > st.total()) {
            rise += c - st.total();
            ++rises;
        }
    }
    const double scale = rises > 0 ? rise / rises : std::max(st.total(), 1e-9) * 0.01;
    if (a.random_start) st.randomize(r);
    std::vector<int> best_groups = st.group_of();
    (void)run.offer(st.total());

    double t0 = a.start_temperature * scale;
    const double t_end = a.end_temperature * scale;
    for (int round = 0; !run.done(); ++round) {
        // Rounds 0–2 start from the chain start, a group start and a random partition (all random
        // with random_start); then fresh starts and the best partition found, as said above.
        if (round == 1) {
            if (a.random_start) {
                st.randomize(r);
            } else {
                st.group_start(r);
            }
        } else if (round == 2) {
            st.randomize(r);
        } else if (round > 2 && round % 3 == 0) {
            // A fresh start now and then, at the first temperature: the best basin is not
            // always reachable from the last one.
            if (a.random_start) {
                st.randomize(r);
            } else {
                st.chain_start(r);
            }
            t0 = a.start_temperature * scale;
        } else if (round > 2) {
            st.assign(best_groups);
            t0 = std::max(t0 * a.reheat, t_end * 10);
        }
        if (run.offer(st.total())) best_groups = st.group_of();
        const double ratio = t_end < t0 ? std::log(t_end / t0) : 0.0;
        for (std::uint64_t m = 0; m < a.round_moves && run.next(); ++m) {
            const double temp = t0 * std::exp(ratio * static_cast<double>(m) / static_cast<double>(a.round_moves));
            int x = 0, y = 0;
            random_pair(x, y);
            const double limit = st.total() - temp * std::log(1 - r.uniform01());
            const double c = st.try_swap(x, y, limit);
            if (c < limit) {
                st.commit_swap();
                if (run.offer(st.total())) best_groups = st.group_of();
            }
        }
    }
    st.assign(best_groups);
    return run.finish(t, st.to_placement());
}

inline search_result search(const topology& t, int stages, search_method m, const search_options& o) {
    return m == search_method::genetic ? genetic_search(t, stages, o) : anneal_search(t, stages, o);
}

}  // namespace dtfm::plan
