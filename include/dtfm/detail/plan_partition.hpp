// Machinery of the placement searches (dtfm/plan/search.hpp): a seeded PRNG, bottleneck perfect
// matching between two stage groups, the exact open-loop TSP over stage groups (Held–Karp), and a
// partition of the devices into stage groups whose DT-FM cost is updated incrementally by swaps.
//
// Given the stage groups, the rest of DT-FM's cost is solved exactly: consecutive groups are linked
// by the perfect matching whose slowest link is fastest (the PP term only sees that link), and the
// groups are ordered by the cheapest open path through them with those bottlenecks as edge weights.
// So a search only has to explore partitions.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include "dtfm/plan/cost_model.hpp"
#include "dtfm/plan/topology.hpp"

namespace dtfm::plan::detail {

inline constexpr double infinity = std::numeric_limits<double>::infinity();

// xoshiro256** (Blackman & Vigna), its state filled by splitmix64 from the seed: the same seed gives
// the same stream on every platform, unlike std:: distributions.
class rng {
public:
    explicit rng(std::uint64_t seed) noexcept {
        for (auto& w : s_) {
            seed += 0x9E3779B97F4A7C15ull;
            std::uint64_t z = seed;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            w = z ^ (z >> 31);
        }
    }

    std::uint64_t next() noexcept {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    // An integer in [0, bound), bound ≥ 1, by multiply-shift of the top 32 bits: the bias, below
    // bound / 2^32, is far under anything a search can notice.
    int below(int bound) noexcept {
        return static_cast<int>(((next() >> 32) * static_cast<std::uint64_t>(bound)) >> 32);
    }

    // A double in [0, 1).
    double uniform01() noexcept { return static_cast<double>(next() >> 11) * 0x1p-53; }

    template <class T>
    void shuffle(std::vector<T>& v) noexcept {
        for (std::size_t i = v.size(); i > 1; --i) {
            const auto j = static_cast<std::size_t>(below(static_cast<int>(i)));
            std::swap(v[i - 1], v[j]);
        }
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
    std::uint64_t s_[4];
};

// The link costs of the model for a search of `stages` stages over all n devices (D = n / stages):
// dp[a·n + b] is what device a pays in the DP sum for partner b, pp[a·n + b] one activation transfer.
struct link_tables {
    int n = 0;
    int groups = 0;
    int group_size = 0;
    bool symmetric_pp = true;
    std::vector<double> dp;
    std::vector<double> pp;

    link_tables(const topology& t, int stages, const cost_params& c)
        : n(t.size()), groups(stages), group_size(t.size() / stages) {
        const auto nn = static_cast<std::size_t>(n) * static_cast<std::size_t>(n);
        dp.assign(nn, 0);
        pp.assign(nn, 0);
        for (int a = 0; a < n; ++a) {
            for (int b = 0; b < n; ++b) {
                if (a == b) continue;
                dp[at(a, b)] = dp_link_seconds(t, a, b, group_size, c);
                pp[at(a, b)] = pp_link_seconds(t, a, b, c);
            }
        }
        for (int a = 0; a < n && symmetric_pp; ++a) {
            for (int b = 0; b < a; ++b) {
                if (pp[at(a, b)] != pp[at(b, a)]) {
                    symmetric_pp = false;
                    break;
                }
            }
        }
    }

    std::size_t at(int a, int b) const noexcept {
        return static_cast<std::size_t>(a) * static_cast<std::size_t>(n) + static_cast<std::size_t>(b);
    }
};

// Bottleneck perfect matching from group `from` to group `to` (D devices each): the least t such
// that every device of `from` can send to a distinct device of `to` over links of cost ≤ t.
// t starts at a lower bound (every row and every column needs one link) and rows are matched one
// by one by augmenting paths over links ≤ t (Kuhn). When row i finds none, the rows R its search
// reached can use only the |R| − 1 columns C it saw, so any perfect matching needs a link from R
// outside C: t rises to the cheapest such link and the search resumes. The final t is therefore
// the optimum, in O(D³) without sorting.
class bottleneck_matcher {
public:
    double value(const link_tables& lt, const int* from, const int* to) { return solve(lt, from, to, nullptr); }

    // The bound solve starts from: the largest of the row minima and the column minima. O(D²).
    static double lower_bound(const link_tables& lt, const int* from, const int* to) {
        const int D = lt.group_size;
        double t = 0;
        for (int j = 0; j < D; ++j) {
            double col_min = infinity;
            for (int i = 0; i < D; ++i) col_min = std::min(col_min, lt.pp[lt.at(from[i], to[j])]);
            t = std::max(t, col_min);
        }
        for (int i = 0; i < D; ++i) {
            const double* row = &lt.pp[lt.at(from[i], 0)];
            double row_min = infinity;
            for (int j = 0; j < D; ++j) row_min = std::min(row_min, row[to[j]]);
            t = std::max(t, row_min);
        }
        return t;
    }

    // Also gives the matching: (*match)[i] is the index in `to` of the partner of from[i].
    double solve(const link_tables& lt, const int* from, const int* to, std::vector<int>* match) {
        d_ = lt.group_size;
        const auto D = static_cast<std::size_t>(d_);
        c_.resize(D * D);
        col_min_.assign(D, infinity);
        double t = 0;
        for (std::size_t i = 0; i < D; ++i) {
            const double* row = &lt.pp[lt.at(from[i], 0)];
            double row_min = infinity;
            for (std::size_t j = 0; j < D; ++j) {
                const double v = row[to[j]];
                c_[i * D + j] = v;
                row_min = std::min(row_min, v);
                col_min_[j] = std::min(col_min_[j], v);
            }
            t = std::max(t, row_min);
        }
        for (const double v : col_min_) t = std::max(t, v);

        match_to_.assign(D, -1);
        seen_.resize(D);
        for (int i = 0; i < d_; ++i) {
            for (;;) {
                std::fill(seen_.begin(), seen_.end(), 0);
                if (augment(i, t)) break;
                double raise = infinity;
                auto scan = [&](int r) {
                    const double* row = &c_[static_cast<std::size_t>(r) * D];
                    for (std::size_t j = 0; j < D; ++j) {
                        if (!seen_[j]) raise = std::min(raise, row[j]);
                    }
                };
                scan(i);
                for (std::size_t j = 0; j < D; ++j) {
                    if (seen_[j]) scan(match_to_[j]);
                }
                t = raise;
            }
        }
        if (match) {
            match->assign(D, -1);
            for (std::size_t j = 0; j < D; ++j) (*match)[static_cast<std::size_t>(match_to_[j])] = static_cast<int>(j);
        }
        return t;
    }

private:
    bool augment(int i, double limit) {
        const auto D = static_cast<std::size_t>(d_);
        const double* row = &c_[static_cast<std::size_t>(i) * D];
        for (std::size_t j = 0; j < D; ++j) {
            if (row[j] > limit || seen_[j]) continue;
            seen_[j] = 1;
            if (match_to_[j] < 0 || augment(match_to_[j], limit)) {
                match_to_[j] = i;
                return true;
            }
        }
        return false;
    }

    int d_ = 0;
    std::vector<double> c_;
    std::vector<double> col_min_;
    std::vector<int> match_to_;
    std::vector<char> seen_;
};

// Largest group count ordered exactly; above it the order comes from a local search (still a
// valid placement, but the PP term may not be the least for the partition).
inline constexpr int max_exact_order_groups = 16;

// The cheapest open path through S nodes with directed weights w (row-major S×S, from row to
// column): Held–Karp, O(2^S·S²), for S ≤ max_exact_order_groups; nearest neighbour from every start
// then node moves otherwise.
class path_solver {
public:
    // The cost, or +inf when it is not below `bound`: partial paths only grow, so those that reach
    // the bound are dropped early.
    double value(std::span<const double> w, int S, double bound = infinity) { return solve(w, S, nullptr, bound); }

    double solve(std::span<const double> w, int S, std::vector<int>* order, double bound = infinity) {
        if (S <= 1) {
            if (order) order->assign(static_cast<std::size_t>(std::max(S, 0)), 0);
            return 0;
        }
        if (S > max_exact_order_groups) {
            const double v = heuristic(w, S, order);
            return v < bound ? v : infinity;
        }
        const auto s = static_cast<std::size_t>(S);
        const std::uint32_t full = (std::uint32_t{1} << S) - 1;
        cost_.assign((std::size_t{full} + 1) * s, infinity);
        if (order) parent_.assign((std::size_t{full} + 1) * s, -1);
        for (std::size_t j = 0; j < s; ++j) cost_[(std::size_t{1} << j) * s + j] = 0;
        for (std::uint32_t mask = 1; mask < full; ++mask) {
            const double* here = &cost_[std::size_t{mask} * s];
            for (std::uint32_t in = mask; in != 0; in &= in - 1) {
                const auto j = static_cast<std::size_t>(std::countr_zero(in));
                const double v = here[j];
                if (v >= bound) continue;
                const double* wj = &w[j * s];
                for (std::uint32_t out = full & ~mask; out != 0; out &= out - 1) {
                    const auto k = static_cast<std::size_t>(std::countr_zero(out));
                    const std::size_t next = std::size_t{mask | (std::uint32_t{1} << k)} * s + k;
                    const double nv = v + wj[k];
                    if (nv < cost_[next]) {
                        cost_[next] = nv;
                        if (order) parent_[next] = static_cast<int>(j);
                    }
                }
            }
        }
        std::size_t last = 0;
        const std::size_t end = std::size_t{full} * s;
        for (std::size_t j = 1; j < s; ++j) {
            if (cost_[end + j] < cost_[end + last]) last = j;
        }
        const double best = cost_[end + last];
        if (best >= bound) return infinity;
        if (order) {
            order->assign(s, 0);
            std::uint32_t mask = full;
            for (std::size_t k = s; k-- > 0;) {
                (*order)[k] = static_cast<int>(last);
                const int p = parent_[std::size_t{mask} * s + last];
                mask &= ~(std::uint32_t{1} << last);
                last = static_cast<std::size_t>(p < 0 ? 0 : p);
            }
        }
        return best;
    }

private:
    static double length(std::span<const double> w, std::size_t s, const std::vector<int>& o) {
        double sum = 0;
        for (std::size_t k = 0; k + 1 < o.size(); ++k) {
            sum += w[static_cast<std::size_t>(o[k]) * s + static_cast<std::size_t>(o[k + 1])];
        }
        return sum;
    }

    double heuristic(std::span<const double> w, int S, std::vector<int>* order) {
        const auto s = static_cast<std::size_t>(S);
        std::vector<int> best_order;
        double best = infinity;
        std::vector<int> o;
        std::vector<char> used;
        for (int start = 0; start < S; ++start) {
            o.assign(1, start);
            used.assign(s, 0);
            used[static_cast<std::size_t>(start)] = 1;
            while (o.size() < s) {
                const auto from = static_cast<std::size_t>(o.back());
                int pick = -1;
                for (std::size_t k = 0; k < s; ++k) {
                    if (!used[k] && (pick < 0 || w[from * s + k] < w[from * s + static_cast<std::size_t>(pick)])) {
                        pick = static_cast<int>(k);
                    }
                }
                used[static_cast<std::size_t>(pick)] = 1;
                o.push_back(pick);
            }
            // Move single nodes to their best position until no move helps.
            double len = length(w, s, o);
            for (bool improved = true; improved;) {
                improved = false;
                for (std::size_t i = 0; i < s; ++i) {
                    const int node = o[i];
                    std::vector<int> rest = o;
                    rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(i));
                    for (std::size_t p = 0; p <= rest.size(); ++p) {
                        std::vector<int> cand = rest;
                        cand.insert(cand.begin() + static_cast<std::ptrdiff_t>(p), node);
                        const double l = length(w, s, cand);
                        if (l < len - 1e-12) {
                            o = std::move(cand);
                            len = l;
                            improved = true;
                            break;
                        }
                    }
                    if (improved) break;
                }
            }
            if (len < best) {
                best = len;
                best_order = o;
            }
        }
        if (order) *order = best_order;
        return best;
    }

    std::vector<double> cost_;
    std::vector<int> parent_;
};

// A lower bound on the cheapest open path through S ≥ 2 nodes (weights w, row-major S×S).
inline double path_lower_bound(std::span<const double> w, int S) {
    const auto s = static_cast<std::size_t>(S);
    double out_sum = 0, out_max = 0, in_sum = 0, in_max = 0;
    for (std::size_t i = 0; i < s; ++i) {
        double out = infinity, in = infinity;
        for (std::size_t j = 0; j < s; ++j) {
            if (j == i) continue;
            out = std::min(out, w[i * s + j]);
            in = std::min(in, w[j * s + i]);
        }
        out_sum += out;
        out_max = std::max(out_max, out);
        in_sum += in;
        in_max = std::max(in_max, in);
    }
    return std::max(out_sum - out_max, in_sum - in_max);
}

// A balanced partition of all devices into S stage groups of D, with its exact DT-FM cost (the best
// pipelines for these groups) kept up to date under swaps of two devices of different groups.
// A swap changes the DP sums of its two groups only (O(D)) and the bottlenecks of the 2(S−1)·2
// ordered pairs touching them; the group order is then solved again.
class partition_state {
public:
    explicit partition_state(const link_tables& lt)
        : lt_(&lt), S_(lt.groups), D_(lt.group_size), members_(sz(S_) * sz(D_)), group_of_(sz(lt.n)),
          slot_of_(sz(lt.n)), rowsum_(sz(lt.n)), group_dp_(sz(S_)), w_(sz(S_) * sz(S_)), w_next_(w_.size()),
          new_g_(sz(D_)), new_h_(sz(D_)), sum_g_(sz(D_)), sum_h_(sz(D_)) {}

    // group_of[d] is the group of device d; every group must hold exactly D devices.
    void assign(std::span<const int> group_of) {
        std::vector<int> fill(sz(S_), 0);
        for (int d = 0; d < lt_->n; ++d) {
            const int g = group_of[sz(d)];
            const int slot = fill[sz(g)]++;
            members_[sz(g) * sz(D_) + sz(slot)] = d;
            group_of_[sz(d)] = g;
            slot_of_[sz(d)] = slot;
        }
        for (int g = 0; g < S_; ++g) {
            const int* m = group(g);
            double worst = 0;
            for (int i = 0; i < D_; ++i) {
                double sum = 0;
                for (int j = 0; j < D_; ++j) sum += lt_->dp[lt_->at(m[i], m[j])];
                rowsum_[sz(m[i])] = sum;
                worst = std::max(worst, sum);
            }
            group_dp_[sz(g)] = worst;
        }
        dp_ = *std::max_element(group_dp_.begin(), group_dp_.end());
        for (int g = 0; g < S_; ++g) {
            for (int h = 0; h < S_; ++h) {
                w_[sz(g) * sz(S_) + sz(h)] = g == h ? 0 : matcher_.value(*lt_, group(g), group(h));
            }
        }
        pp_ = path_.value(w_, S_);
        total_ = dp_ + 2 * pp_;
        pending_ = false;
    }

    // A random balanced partition.
    void randomize(rng& r) {
        std::vector<int> perm(sz(lt_->n));
        for (int d = 0; d < lt_->n; ++d) perm[sz(d)] = d;
        r.shuffle(perm);
        std::vector<int> g(sz(lt_->n));
        for (int i = 0; i < lt_->n; ++i) g[sz(perm[sz(i)])] = i / D_;
        assign(g);
    }

    // Pipelines first: D chains, each from a random free device extended S − 1 times by the free
    // device it sends to fastest; stage group k holds the k-th device of every chain. Where devices
    // form fast clusters of at least S (a city, a data centre), each pipeline stays inside one.
    void chain_start(rng& r) {
        const int n = lt_->n;
        std::vector<char> used(sz(n), 0);
        std::vector<int> g(sz(n));
        for (int c = 0; c < D_; ++c) {
            int at = r.below(n - c * S_);
            int last = 0;
            for (int d = 0; d < n; ++d) {
                if (!used[sz(d)] && at-- == 0) {
                    last = d;
                    break;
                }
            }
            used[sz(last)] = 1;
            g[sz(last)] = 0;
            for (int k = 1; k < S_; ++k) {
                int next = -1;
                for (int d = 0; d < n; ++d) {
                    if (!used[sz(d)] && (next < 0 || lt_->pp[lt_->at(last, d)] < lt_->pp[lt_->at(last, next)])) next = d;
                }
                used[sz(next)] = 1;
                g[sz(next)] = k;
                last = next;
            }
        }
        assign(g);
    }

    // Groups first: S groups, each from a random free device grown D − 1 times by the free device
    // that adds least to the group's DP sums. Where devices form fast clusters of at least D, each
    // stage group stays inside one.
    void group_start(rng& r) {
        const int n = lt_->n;
        std::vector<char> used(sz(n), 0);
        std::vector<int> g(sz(n));
        std::vector<int> mem;
        for (int k = 0; k < S_; ++k) {
            int at = r.below(n - k * D_);
            for (int d = 0; d < n; ++d) {
                if (!used[sz(d)] && at-- == 0) {
                    mem.assign(1, d);
                    break;
                }
            }
            used[sz(mem[0])] = 1;
            g[sz(mem[0])] = k;
            while (static_cast<int>(mem.size()) < D_) {
                int next = -1;
                double best = infinity;
                for (int d = 0; d < n; ++d) {
                    if (used[sz(d)]) continue;
                    double add = 0;
                    for (const int m : mem) add += lt_->dp[lt_->at(d, m)] + lt_->dp[lt_->at(m, d)];
                    if (add < best) {
                        best = add;
                        next = d;
                    }
                }
                used[sz(next)] = 1;
                g[sz(next)] = k;
                mem.push_back(next);
            }
        }
        assign(g);
    }

    double total() const noexcept { return total_; }
    double dp() const noexcept { return dp_; }
    double pp() const noexcept { return pp_; }
    int groups() const noexcept { return S_; }
    int group_size() const noexcept { return D_; }
    int devices() const noexcept { return lt_->n; }
    const std::vector<int>& group_of() const noexcept { return group_of_; }
    const int* group(int g) const noexcept { return &members_[sz(g) * sz(D_)]; }

    // The cost after swapping devices a and b (of different groups), without applying it. Returns
    // +inf early, before any matching is solved, when the DP term alone reaches give_up_at.
    double try_swap(int a, int b, double give_up_at) {
        pending_ = false;
        a_ = a;
        b_ = b;
        g_ = group_of_[sz(a)];
        h_ = group_of_[sz(b)];
        const int* mg = group(g_);
        const int* mh = group(h_);
        const double worst_g = swapped_sums(mg, a, b, sum_g_);
        const double worst_h = swapped_sums(mh, b, a, sum_h_);
        double new_dp = std::max(worst_g, worst_h);
        for (int k = 0; k < S_; ++k) {
            if (k != g_ && k != h_) new_dp = std::max(new_dp, group_dp_[sz(k)]);
        }
        if (new_dp >= give_up_at) return infinity;
        worst_g_ = worst_g;
        worst_h_ = worst_h;
        next_dp_ = new_dp;

        std::copy(mg, mg + D_, new_g_.begin());
        std::copy(mh, mh + D_, new_h_.begin());
        new_g_[sz(slot_of_[sz(a)])] = b;
        new_h_[sz(slot_of_[sz(b)])] = a;
        // First the matching bounds of the changed pairs: with the path bound they refuse most
        // swaps before any matching is solved. Then the exact bottlenecks.
        w_next_ = w_;
        for (const bool exact : {false, true}) {
            update_pairs(exact);
            if (next_dp_ + 2 * path_lower_bound(w_next_, S_) >= give_up_at) return infinity;
        }
        next_pp_ = path_.value(w_next_, S_, give_up_at == infinity ? infinity : (give_up_at - next_dp_) / 2);
        if (next_pp_ == infinity) return infinity;
        pending_ = true;
        return next_dp_ + 2 * next_pp_;
    }

    // The DP sums of group m once `out` leaves it and `in` takes its slot, into sums (slot order);
    // returns the largest.
    double swapped_sums(const int* m, int out, int in, std::vector<double>& sums) const {
        const std::vector<double>& dp = lt_->dp;
        double worst = 0, sum_in = 0;
        for (int i = 0; i < D_; ++i) {
            const int x = m[i];
            if (x == out) continue;
            const double s = rowsum_[sz(x)] - dp[lt_->at(x, out)] + dp[lt_->at(x, in)];
            sums[sz(i)] = s;
            worst = std::max(worst, s);
            sum_in += dp[lt_->at(in, x)];
        }
        sums[sz(slot_of_[sz(out)])] = sum_in;
        return std::max(worst, sum_in);
    }

    // Fills w_next_ for the ordered pairs that touch the swapped groups: their bottlenecks, or
    // lower bounds on them.
    void update_pairs(bool exact) {
        const auto s = sz(S_);
        auto bottleneck = [&](const int* from, const int* to) {
            return exact ? matcher_.value(*lt_, from, to) : bottleneck_matcher::lower_bound(*lt_, from, to);
        };
        for (int k = 0; k < S_; ++k) {
            if (k == g_ || k == h_) continue;
            const int* mk = group(k);
            for (const auto& [grp, mem] : {std::pair{g_, new_g_.data()}, std::pair{h_, new_h_.data()}}) {
                const double out = bottleneck(mem, mk);
                w_next_[sz(grp) * s + sz(k)] = out;
                w_next_[sz(k) * s + sz(grp)] = lt_->symmetric_pp ? out : bottleneck(mk, mem);
            }
        }
        const double gh = bottleneck(new_g_.data(), new_h_.data());
        w_next_[sz(g_) * s + sz(h_)] = gh;
        w_next_[sz(h_) * s + sz(g_)] = lt_->symmetric_pp ? gh : bottleneck(new_h_.data(), new_g_.data());
    }

    // Applies the last try_swap, which must have returned a finite cost.
    void commit_swap() {
        if (!pending_) return;
        const int sa = slot_of_[sz(a_)], sb = slot_of_[sz(b_)];
        members_[sz(g_) * sz(D_) + sz(sa)] = b_;
        members_[sz(h_) * sz(D_) + sz(sb)] = a_;
        group_of_[sz(a_)] = h_;
        group_of_[sz(b_)] = g_;
        slot_of_[sz(a_)] = sb;
        slot_of_[sz(b_)] = sa;
        const int* mg = group(g_);
        const int* mh = group(h_);
        for (int i = 0; i < D_; ++i) {
            rowsum_[sz(mg[i])] = sum_g_[sz(i)];
            rowsum_[sz(mh[i])] = sum_h_[sz(i)];
        }
        group_dp_[sz(g_)] = worst_g_;
        group_dp_[sz(h_)] = worst_h_;
        std::swap(w_, w_next_);
        dp_ = next_dp_;
        pp_ = next_pp_;
        total_ = dp_ + 2 * pp_;
        pending_ = false;
    }

    // The pipelines: groups in the best order, consecutive groups linked by bottleneck matchings.
    placement to_placement() {
        std::vector<int> order;
        (void)path_.solve(w_, S_, &order);
        placement p;
        p.pipelines.assign(sz(D_), std::vector<int>(sz(S_)));
        std::vector<int> stage(group(order[0]), group(order[0]) + D_);
        std::vector<int> match;
        for (int k = 0;; ++k) {
            for (int r = 0; r < D_; ++r) p.pipelines[sz(r)][sz(k)] = stage[sz(r)];
            if (k + 1 == S_) break;
            const int* next = group(order[sz(k + 1)]);
            (void)matcher_.solve(*lt_, stage.data(), next, &match);
            for (int r = 0; r < D_; ++r) stage[sz(r)] = next[sz(match[sz(r)])];
        }
        return p;
    }

private:
    static std::size_t sz(int i) noexcept { return static_cast<std::size_t>(i); }

    const link_tables* lt_;
    int S_, D_;
    std::vector<int> members_;  // group-major S×D
    std::vector<int> group_of_, slot_of_;
    std::vector<double> rowsum_;    // per device: its DP sum over its group
    std::vector<double> group_dp_;  // per group: its largest DP sum
    std::vector<double> w_;         // S×S bottleneck of each ordered group pair
    double dp_ = 0, pp_ = 0, total_ = 0;

    // The swap try_swap evaluated, ready for commit_swap.
    bool pending_ = false;
    int a_ = 0, b_ = 0, g_ = 0, h_ = 0;
    double worst_g_ = 0, worst_h_ = 0, next_dp_ = 0, next_pp_ = 0;
    std::vector<double> w_next_;
    std::vector<int> new_g_, new_h_;
    std::vector<double> sum_g_, sum_h_;

    bottleneck_matcher matcher_;
    path_solver path_;
};

}  // namespace dtfm::plan::detail
