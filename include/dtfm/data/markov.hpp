// data::markov_source: an embedded synthetic corpus whose best achievable loss is known. A seeded
// random order-k Markov chain over a small alphabet: after every k-token context, `branching`
// tokens are likely, with random weights. Its entropy rate H = Σ_c π(c)·H(next | c) (π the
// stationary distribution of contexts, found by power iteration) is the cross-entropy floor a
// perfect model reaches, printed beside the training loss.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "dtfm/error.hpp"

namespace dtfm::detail {

// splitmix64: a tiny, well-mixed, seedable generator whose output is the same on every platform.
inline std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

inline double unit_double(std::uint64_t& state) { return static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53; }

}  // namespace dtfm::detail

namespace dtfm::data {

class markov_source {
public:
    // vocab ≤ 256 tokens, order 1–3, contexts vocab^order ≤ 2^16, 1 ≤ branching ≤ vocab.
    markov_source(int vocab, int order, int branching, std::uint64_t seed) : vocab_(vocab), order_(order), seed_(seed) {
        if (vocab < 2 || vocab > 256) throw config_error("markov_source: vocab must be 2–256, got " + std::to_string(vocab));
        if (order < 1 || order > 3) throw config_error("markov_source: order must be 1–3, got " + std::to_string(order));
        if (branching < 1 || branching > vocab) throw config_error("markov_source: branching must be 1–vocab");
        contexts_ = 1;
        for (int i = 0; i < order; ++i) contexts_ *= static_cast<std::size_t>(vocab);
        if (contexts_ > (1u << 16)) throw config_error("markov_source: vocab^order must be at most 65536");
        const auto v = static_cast<std::size_t>(vocab);
        cumulative_.assign(contexts_ * v, 0.0);
        std::uint64_t rng = seed * 0x2545f4914f6cdd1dull + 1;
        std::vector<double> p(v);
        for (std::size_t c = 0; c < contexts_; ++c) {
            // A floor of probability on every token keeps the chain irreducible (π unique).
            std::fill(p.begin(), p.end(), 0.02 / static_cast<double>(v));
            for (int b = 0; b < branching; ++b) p[dtfm::detail::splitmix64(rng) % v] += 0.1 + dtfm::detail::unit_double(rng);
            double total = 0;
            for (double x : p) total += x;
            double run = 0;
            for (std::size_t t = 0; t < v; ++t) {
                run += p[t] / total;
                cumulative_[c * v + t] = run;
            }
            cumulative_[c * v + v - 1] = 1.0;
        }
        stationary();
    }

    int vocab() const noexcept { return vocab_; }
    int order() const noexcept { return order_; }

    // Nats per token a perfect model reaches once it has seen `order` tokens of context.
    double entropy_rate() const noexcept { return entropy_rate_; }

    // The mean cross-entropy floor over a sequence predicting tokens 1…length from the ones before
    // (token 0 is given): the first order−1 predictions see less than a full context.
    double loss_floor(int length) const {
        if (length < 1) throw config_error("markov_source::loss_floor: length must be positive");
        double total = 0;
        for (int t = 0; t < length; ++t) total += t + 1 >= order_ ? entropy_rate_ : short_context_entropy(t + 1);
        return total / length;
    }

    // Sample `id`: tokens.size() consecutive tokens of the chain from a start drawn for this id
    // (the stationary distribution after a burn-in), the same for every caller.
    void sample(std::uint64_t id, std::span<std::int32_t> tokens) const {
        std::uint64_t rng = (seed_ + 0x9e3779b97f4a7c15ull) ^ (id * 0xd1b54a32d192ed03ull);
        std::size_t context = dtfm::detail::splitmix64(rng) % contexts_;
        for (int i = 0; i < 32; ++i) context = step(context, rng).second;
        for (auto& tok : tokens) {
            const auto [token, next] = step(context, rng);
            tok = static_cast<std::int32_t>(token);
            context = next;
        }
    }

private:
    std::pair<std::size_t, std::size_t> step(std::size_t context, std::uint64_t& rng) const {
        const auto v = static_cast<std::size_t>(vocab_);
        const double u = dtfm::detail::unit_double(rng);
        const double* row = &cumulative_[context * v];
        const std::size_t token = static_cast<std::size_t>(std::upper_bound(row, row + v, u) - row);
        const std::size_t t = std::min(token, v - 1);
        return {t, (context * v + t) % contexts_};
    }

    double probability(std::size_t context, std::size_t token) const {
        const auto v = static_cast<std::size_t>(vocab_);
        return cumulative_[context * v + token] - (token == 0 ? 0.0 : cumulative_[context * v + token - 1]);
    }

    void stationary() {
        const auto v = static_cast<std::size_t>(vocab_);
        pi_.assign(contexts_, 1.0 / static_cast<double>(contexts_));
        std::vector<double> next(contexts_);
        for (int iter = 0; iter < 10000; ++iter) {
            std::fill(next.begin(), next.end(), 0.0);
            for (std::size_t c = 0; c < contexts_; ++c)
                for (std::size_t t = 0; t < v; ++t) next[(c * v + t) % contexts_] += pi_[c] * probability(c, t);
            double change = 0;
            for (std::size_t c = 0; c < contexts_; ++c) change += std::abs(next[c] - pi_[c]);
            pi_.swap(next);
            if (change < 1e-14) break;
        }
        entropy_rate_ = 0;
        for (std::size_t c = 0; c < contexts_; ++c)
            for (std::size_t t = 0; t < v; ++t) {
                const double q = probability(c, t);
                if (q > 0) entropy_rate_ -= pi_[c] * q * std::log(q);
            }
    }

    // H(X_{j} | X_0…X_{j−1}) under the stationary chain, for j < order: H(X_0…X_j) − H(X_0…X_{j−1}),
    // from the marginals of π over the last j+1 and j tokens of a context.
    double short_context_entropy(int j) const {
        return block_entropy(j + 1) - block_entropy(j);
    }

    double block_entropy(int tokens) const {
        if (tokens == 0) return 0;
        std::size_t span = 1;
        for (int i = 0; i < tokens; ++i) span *= static_cast<std::size_t>(vocab_);
        std::vector<double> marginal(span, 0.0);  // tokens ≤ order: the last `tokens` of a context
        for (std::size_t c = 0; c < contexts_; ++c) marginal[c % span] += pi_[c];
        double h = 0;
        for (double q : marginal)
            if (q > 0) h -= q * std::log(q);
        return h;
    }

    int vocab_, order_;
    std::uint64_t seed_;
    std::size_t contexts_ = 1;
    std::vector<double> cumulative_;  // per context, the cumulative next-token distribution
    std::vector<double> pi_;
    double entropy_rate_ = 0;
};

}  // namespace dtfm::data
