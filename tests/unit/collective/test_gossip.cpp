// collective::gossip<C, Graph> on the in-process transport: the graphs' neighbours, the mean over
// ranks kept by every round, geometric consensus (faster on the exponential graph than on the
// ring), CHOCO-SGD with a quantizer and γ < 1 still reaching the average, bit-identical replicas,
// and a bounded wait when a neighbour never joins.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include "dtfm/collective/gossip.hpp"
#include "dtfm/compress/identity.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/compress/randomk.hpp"
#include "dtfm/transport/inproc.hpp"
#include "../../support/rank_check.hpp"

using dtfm::collective::exponential_graph;
using dtfm::collective::gossip;
using dtfm::collective::options;
using dtfm::collective::ring_graph;
using dtfm::transport::inproc;
using dtfm::transport::run_inproc;
using namespace std::chrono_literals;
namespace compress = dtfm::compress;

namespace {

float input(int rank, std::size_t i) { return static_cast<float>(std::sin(0.3 * static_cast<double>(i) * (rank + 1)) + 0.5 * rank); }

// Every rank's buffer after each of `rounds` gossip rounds (index 0: the input).
using history = std::vector<std::vector<std::vector<float>>>;  // [round][rank][i]

template <class G>
history run_rounds(int p, std::size_t n, int rounds, G make) {
    history h(static_cast<std::size_t>(rounds + 1), std::vector<std::vector<float>>(static_cast<std::size_t>(p)));
    run_inproc(p, [&](inproc& t) {
        auto g = make();
        const auto me = static_cast<std::size_t>(t.rank());
        std::vector<float> x(n);
        for (std::size_t i = 0; i < n; ++i) x[i] = input(t.rank(), i);
        h[0][me] = x;
        for (int r = 1; r <= rounds; ++r) {
            g.allreduce(t, std::span<float>(x)).wait();
            h[static_cast<std::size_t>(r)][me] = x;
        }
    });
    return h;
}

std::vector<double> mean_of(const std::vector<std::vector<float>>& ranks) {
    std::vector<double> m(ranks[0].size(), 0.0);
    for (const auto& x : ranks)
        for (std::size_t i = 0; i < x.size(); ++i) m[i] += x[i];
    for (auto& v : m) v /= static_cast<double>(ranks.size());
    return m;
}

// sqrt(Σ_ranks ‖x_r − x̄‖²): how far the ranks are from agreeing.
double consensus_distance(const std::vector<std::vector<float>>& ranks) {
    const auto m = mean_of(ranks);
    double d = 0;
    for (const auto& x : ranks)
        for (std::size_t i = 0; i < x.size(); ++i) d += (x[i] - m[i]) * (x[i] - m[i]);
    return std::sqrt(d);
}

double mean_drift(const history& h) {
    const auto m0 = mean_of(h[0]);
    double drift = 0;
    for (const auto& round : h) {
        const auto m = mean_of(round);
        for (std::size_t i = 0; i < m.size(); ++i) drift = std::max(drift, std::abs(m[i] - m0[i]));
    }
    return drift;
}

// The largest distance of any rank's values from the average of the inputs, in the last round.
double gap_to_average(const history& h) {
    const auto m0 = mean_of(h[0]);
    double gap = 0;
    for (const auto& x : h.back())
        for (std::size_t i = 0; i < x.size(); ++i) gap = std::max(gap, std::abs(x[i] - m0[i]));
    return gap;
}

}  // namespace

TEST_CASE("gossip satisfies the collective concept", "[gossip]") {
    STATIC_REQUIRE(dtfm::concepts::collective<gossip<>, inproc>);
    STATIC_REQUIRE(dtfm::concepts::collective<gossip<compress::quantize<4>, exponential_graph>, inproc>);
    STATIC_REQUIRE(std::same_as<gossip<compress::error_feedback<compress::quantize<4>>>::compressor_type, compress::quantize<4>>);
}

TEST_CASE("gossip graphs: ring and exponential neighbours", "[gossip]") {
    using v = std::vector<int>;
    REQUIRE(ring_graph::out_neighbours(0, 1).empty());
    REQUIRE(ring_graph::out_neighbours(1, 2) == v{0});
    REQUIRE(ring_graph::out_neighbours(0, 5) == v{1, 4});
    REQUIRE(ring_graph::in_neighbours(3, 5) == v{4, 2});
    REQUIRE(exponential_graph::out_neighbours(0, 2) == v{1});
    REQUIRE(exponential_graph::out_neighbours(6, 8) == v{7, 0, 2});
    REQUIRE(exponential_graph::in_neighbours(1, 8) == v{0, 7, 5});
    REQUIRE(exponential_graph::out_neighbours(2, 5) == v{3, 4, 1});
    // Every edge out of a rank is an edge into its target.
    for (int p = 1; p <= 9; ++p)
        for (int r = 0; r < p; ++r)
            for (int j : exponential_graph::out_neighbours(r, p)) {
                const auto in = exponential_graph::in_neighbours(j, p);
                REQUIRE(std::count(in.begin(), in.end(), r) == 1);
            }
}

TEST_CASE("gossip with one rank is a no-op and with two averages in one round", "[gossip]") {
    const auto one = run_rounds(1, 10, 2, [] { return gossip<>(options{.tag = 0, .timeout = 10s}); });
    REQUIRE(one.back()[0] == one[0][0]);
    const auto two = run_rounds(2, 100, 1, [] { return gossip<>(options{.tag = 0, .timeout = 10s}); });
    for (std::size_t i = 0; i < 100; ++i) {
        const double m = (static_cast<double>(input(0, i)) + input(1, i)) / 2;
        REQUIRE(std::abs(two[1][0][i] - m) <= 1e-6);
        REQUIRE(std::abs(two[1][1][i] - m) <= 1e-6);
    }
}

TEST_CASE("gossip keeps the mean over ranks in every round", "[gossip]") {
    for (int p = 1; p <= 8; ++p) {
        INFO("ranks " << p);
        const auto ring = run_rounds(p, 257, 6, [] { return gossip<>(options{.tag = 0, .timeout = 10s}); });
        REQUIRE(mean_drift(ring) <= 1e-5);
        const auto expo = run_rounds(p, 257, 6, [] { return gossip<compress::identity, exponential_graph>(options{.tag = 8, .timeout = 10s}); });
        REQUIRE(mean_drift(expo) <= 1e-5);
        const auto choco = run_rounds(p, 257, 6, [] {
            return gossip<compress::quantize<4>, exponential_graph>(compress::quantize<4>{}, 0.5f, options{.tag = 0, .timeout = 10s});
        });
        REQUIRE(mean_drift(choco) <= 1e-5);
    }
}

TEST_CASE("gossip converges geometrically, faster on the exponential graph", "[gossip]") {
    const int p = 8;
    const auto ring = run_rounds(p, 500, 30, [] { return gossip<>(options{.tag = 0, .timeout = 10s}); });
    const auto expo = run_rounds(p, 500, 30, [] { return gossip<compress::identity, exponential_graph>(options{.tag = 0, .timeout = 10s}); });
    auto d = [](const history& h, int r) { return consensus_distance(h[static_cast<std::size_t>(r)]); };
    INFO("ring: " << d(ring, 0) << " " << d(ring, 10) << " " << d(ring, 20) << " " << d(ring, 30));
    INFO("exponential: " << d(expo, 0) << " " << d(expo, 5) << " " << d(expo, 10));
    // Second eigenvalues of the mixing matrices for P = 8: ring (1 + 2 cos(π/4)) / 3 ≈ 0.80,
    // exponential |1 + e^{iπ/4} + i − 1| / 4 = 0.5 (k = 4 gives 0.5 too).
    for (int r = 0; r < 30; r += 10) REQUIRE(d(ring, r + 10) <= 0.2 * d(ring, r));
    for (int r = 0; r < 10; r += 5) REQUIRE(d(expo, r + 5) <= 0.06 * d(expo, r));
    REQUIRE(d(expo, 10) <= 0.05 * d(ring, 10));
    REQUIRE(gap_to_average(expo) <= 1e-5);
    REQUIRE(gap_to_average(ring) <= 1e-2);
}

TEST_CASE("gossip with compressed differences (CHOCO) still reaches the average", "[gossip]") {
    const auto q = run_rounds(8, 1000, 60, [] {
        return gossip<compress::quantize<4>, exponential_graph>(compress::quantize<4>{}, 0.6f, options{.tag = 0, .timeout = 10s});
    });
    auto d = [](const history& h, int r) { return consensus_distance(h[static_cast<std::size_t>(r)]); };
    INFO("quantize<4>: " << d(q, 0) << " " << d(q, 20) << " " << d(q, 40) << " " << d(q, 60));
    REQUIRE(d(q, 20) <= 0.05 * d(q, 0));
    REQUIRE(d(q, 60) <= 1e-3 * d(q, 0));
    REQUIRE(mean_drift(q) <= 1e-5);
    REQUIRE(gap_to_average(q) <= 1e-3);

    // Random-k keeps a tenth of the differences (positions from (round, sender), so no indices are
    // sent), unscaled: a δ of 0.1 needs a smaller step and more rounds.
    using sparse = compress::randomk<std::ratio<1, 10>, false>;
    const auto s = run_rounds(5, 400, 300, [] { return gossip<sparse>(sparse{7}, 0.1f, options{.tag = 0, .timeout = 10s}); });
    INFO("randomk 1/10: " << d(s, 0) << " " << d(s, 100) << " " << d(s, 200) << " " << d(s, 300));
    REQUIRE(d(s, 300) <= 0.1 * d(s, 0));
    REQUIRE(mean_drift(s) <= 1e-5);
}

TEST_CASE("gossip replicas are bit-identical to their owner's copy", "[gossip]") {
    for (int p : {2, 3, 5, 8}) {
        std::vector<std::vector<float>> self(static_cast<std::size_t>(p));
        std::vector<std::vector<std::vector<float>>> replicas(static_cast<std::size_t>(p));
        std::vector<std::vector<int>> in(static_cast<std::size_t>(p));
        run_inproc(p, [&](inproc& t) {
            gossip<compress::quantize<4>, exponential_graph> g(compress::quantize<4>{}, 0.5f, options{.tag = 0, .timeout = 10s});
            std::vector<float> x(777);
            for (int round = 0; round < 4; ++round) {
                for (std::size_t i = 0; i < x.size(); ++i) x[i] += input(t.rank(), i + static_cast<std::size_t>(round));
                g.allreduce(t, std::span<float>(x)).wait();
            }
            const auto me = static_cast<std::size_t>(t.rank());
            DTFM_RANK_REQUIRE(g.round() == 4);
            self[me].assign(g.estimate().begin(), g.estimate().end());
            in[me] = g.in_neighbours();
            for (int j : g.in_neighbours()) replicas[me].emplace_back(g.replica(j).begin(), g.replica(j).end());
            DTFM_RANK_REQUIRE_THROWS_AS(g.replica(t.rank()), dtfm::error);
        });
        for (std::size_t i = 0; i < self.size(); ++i)
            for (std::size_t k = 0; k < in[i].size(); ++k) REQUIRE(replicas[i][k] == self[static_cast<std::size_t>(in[i][k])]);
    }
}

TEST_CASE("gossip reports its traffic and checks its configuration", "[gossip]") {
    REQUIRE_THROWS_AS(gossip<>(compress::identity{}, 0.0f), dtfm::config_error);
    REQUIRE_THROWS_AS(gossip<>(compress::identity{}, 1.5f), dtfm::config_error);
    REQUIRE_THROWS_AS(gossip<>(options{.tag = dtfm::message_tag::max_id}), dtfm::config_error);
    std::vector<double> ratios(4);
    run_inproc(4, [&](inproc& t) {
        gossip<compress::quantize<4>, exponential_graph> g(compress::quantize<4>{}, 0.5f, options{.tag = 0, .timeout = 10s});
        std::vector<float> x(4096, static_cast<float>(t.rank()));
        g.allreduce(t, std::span<float>(x)).wait();
        DTFM_RANK_REQUIRE(g.sent().value_bytes == 2 * 4096 * sizeof(float));  // two out-neighbours
        ratios[static_cast<std::size_t>(t.rank())] = g.sent().ratio();
        std::vector<float> other(10, 1.0f);
        DTFM_RANK_REQUIRE_THROWS_AS(g.allreduce(t, std::span<float>(other)).wait(), dtfm::error);
        g.reset();
        g.allreduce(t, std::span<float>(other)).wait();
        for (float v : other) DTFM_RANK_REQUIRE(std::abs(v - 1.0f) < 1e-6f);
    });
    for (double r : ratios) REQUIRE(r >= 7.0);
}

TEST_CASE("gossip raises timeout_error when a neighbour never joins", "[gossip]") {
    run_inproc(3, [&](inproc& t) {
        if (t.rank() == 1) return;
        gossip<> g(options{.tag = 0, .timeout = 200ms});
        std::vector<float> x(100, 1.0f);
        const auto start = std::chrono::steady_clock::now();
        DTFM_RANK_REQUIRE_THROWS_AS(g.allreduce(t, std::span<float>(x)).wait(), dtfm::timeout_error);
        DTFM_RANK_REQUIRE(std::chrono::steady_clock::now() - start < 2 * 200ms + 200ms);
    });
    run_inproc(4, [&](inproc& t) {
        if (t.rank() == 3) return;
        gossip<compress::quantize<4>, exponential_graph> g(compress::quantize<4>{}, 0.5f, options{.tag = 0, .timeout = 200ms});
        std::vector<float> x(100, 1.0f);
        // Ranks 0 and 1 wait on rank 3 directly, rank 2 (in-neighbours 1 and 0) does not: it
        // completes its round, as gossip needs no global agreement.
        if (t.rank() == 2) {
            g.allreduce(t, std::span<float>(x)).wait();
        } else {
            DTFM_RANK_REQUIRE_THROWS_AS(g.allreduce(t, std::span<float>(x)).wait(), dtfm::timeout_error);
        }
    });
}
