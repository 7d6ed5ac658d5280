// strategy::data_parallel on the in-process transport: every_step matches full-batch gradient
// descent, local_sgd<1> and diloco with a plain outer step match it too, and on a least-squares
// problem split over 4 ranks, cocktail compression (≥ 50×) reaches the uncompressed loss within
// 1 % and DiLoCo H = 20 within 2 %; residual_sync keeps each rank's unsent residual in its
// parameters and its consensus is what the ranks agree on.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <span>
#include <vector>

#include "dtfm/collective/compressed_allreduce.hpp"
#include "dtfm/collective/gossip.hpp"
#include "dtfm/collective/ring_allreduce.hpp"
#include "dtfm/compress/cocktail.hpp"
#include "dtfm/compress/identity.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/strategy/data_parallel.hpp"
#include "dtfm/transport/inproc.hpp"
#include "../../support/least_squares.hpp"
#include "../../support/rank_check.hpp"

namespace collective = dtfm::collective;
namespace compress = dtfm::compress;
namespace strategy = dtfm::strategy;
using dtfm::optim::sgd;
using dtfm::optim::sgd_options;
using dtfm::test::least_squares_shard;
using dtfm::transport::inproc;
using dtfm::transport::run_inproc;

namespace {

struct outcome {
    double loss = 0;         // the full problem's loss, averaged over the ranks' final parameters
    double ratio = 1;        // compression ratio of the collective, where it counts bytes
    std::vector<float> x;    // rank 0's parameters
    bool replicas_equal = true;
};

template <class DP>
outcome train(int ranks, std::size_t features, std::size_t rows, int steps, float lr,
              typename DP::sync_type sync = typename DP::sync_type{}) {
    outcome out;
    std::vector<std::vector<float>> finals(static_cast<std::size_t>(ranks));
    run_inproc(ranks, [&](inproc& t) {
        least_squares_shard shard(features, rows, 8, t.rank(), 0.5);
        DP dp(typename DP::collective_type{}, sync);
        sgd inner(sgd_options{.lr = lr});
        std::vector<float> x(features, 0.0f), g(features);
        for (int s = 0; s < steps; ++s) {
            shard.loss_and_gradient(x, g);
            dp.step(t, std::span<float>(x), std::span<float>(g), inner);
        }
        finals[static_cast<std::size_t>(t.rank())] = x;
        // residual_sync's model is the consensus; each rank's parameters add its unsent residual.
        if constexpr (requires { dp.sync().consensus(); })
            finals[static_cast<std::size_t>(t.rank())].assign(dp.sync().consensus().begin(), dp.sync().consensus().end());
        if constexpr (requires { dp.collective().sent(); })
            if (t.rank() == 0) out.ratio = dp.collective().sent().ratio();
    });
    // Every rank's model on every shard: decentralized replicas differ, and a replica scored on its
    // own shard alone would look better than it is.
    std::vector<float> g(features);
    for (int s = 0; s < ranks; ++s) {
        least_squares_shard shard(features, rows, 8, s, 0.5);
        for (const auto& x : finals) out.loss += shard.loss_and_gradient(x, g) / (ranks * ranks);
    }
    out.x = finals[0];
    for (auto& f : finals) out.replicas_equal = out.replicas_equal && f == finals[0];
    return out;
}

using exact = strategy::data_parallel<collective::ring, compress::identity>;

}  // namespace

TEST_CASE("data_parallel every_step is full-batch gradient descent", "[data_parallel]") {
    const std::size_t features = 64, rows = 128;
    const int steps = 20;
    const float lr = 0.1f;
    const auto dp = train<exact>(4, features, rows, steps, lr);
    REQUIRE(dp.replicas_equal);
    // The same descent on one rank, averaging the four shards' gradients by hand.
    std::vector<least_squares_shard> shards;
    for (int r = 0; r < 4; ++r) shards.emplace_back(features, rows, 8, r, 0.5);
    std::vector<float> x(features, 0.0f), g(features), sum(features);
    for (int s = 0; s < steps; ++s) {
        std::fill(sum.begin(), sum.end(), 0.0f);
        for (auto& sh : shards) {
            sh.loss_and_gradient(x, g);
            for (std::size_t i = 0; i < features; ++i) sum[i] += g[i] / 4;
        }
        for (std::size_t i = 0; i < features; ++i) x[i] -= lr * sum[i];
    }
    for (std::size_t i = 0; i < features; ++i) REQUIRE(dp.x[i] == Approx(x[i]).margin(1e-4));
}

TEST_CASE("data_parallel: local_sgd<1> and diloco with a plain outer step are every_step", "[data_parallel]") {
    const auto every = train<exact>(3, 48, 64, 12, 0.1f);
    const auto local = train<strategy::data_parallel<collective::ring, compress::identity, strategy::local_sgd<1>>>(3, 48, 64, 12, 0.1f);
    using plain_diloco = strategy::diloco<1, sgd>;
    const auto outer = train<strategy::data_parallel<collective::ring, compress::identity, plain_diloco>>(
        3, 48, 64, 12, 0.1f, plain_diloco(sgd(sgd_options{.lr = 1.0f})));
    REQUIRE(local.replicas_equal);
    REQUIRE(outer.replicas_equal);
    for (std::size_t i = 0; i < every.x.size(); ++i) {
        REQUIRE(local.x[i] == Approx(every.x[i]).margin(1e-4));
        REQUIRE(outer.x[i] == Approx(every.x[i]).margin(1e-4));
    }
}

TEST_CASE("data_parallel syncs every H steps with local_sgd and diloco", "[data_parallel]") {
    run_inproc(2, [&](inproc& t) {
        strategy::data_parallel<collective::ring, compress::identity, strategy::diloco<3>> dp;
        sgd inner(sgd_options{.lr = 0.1f});
        std::vector<float> x(4, 1.0f), g(4, static_cast<float>(t.rank()));
        int synced = 0;
        for (int s = 1; s <= 9; ++s) {
            const bool did = dp.step(t, std::span<float>(x), std::span<float>(g), inner);
            DTFM_RANK_REQUIRE(did == (s % 3 == 0));
            synced += did ? 1 : 0;
        }
        DTFM_RANK_REQUIRE(synced == 3 && dp.synchronisations() == 3 && dp.steps() == 9);
        std::vector<float> wrong(3);
        DTFM_RANK_REQUIRE_THROWS_AS(dp.step(t, std::span<float>(x), std::span<float>(wrong), inner), dtfm::error);
    });
}

// residual_sync keeps each rank's unsent residual in its parameters: without compression the
// residual is zero and it is plain gradient descent; with cocktail every rank's θ + e is the
// consensus x̂, the same on every rank.
TEST_CASE("data_parallel residual_sync: exact without compression, consensus plus residual with cocktail", "[data_parallel]") {
    const auto every = train<exact>(3, 48, 64, 12, 0.1f);
    const auto lossless = train<strategy::data_parallel<collective::compressed_allreduce, compress::identity, strategy::residual_sync<1>>>(
        3, 48, 64, 12, 0.1f);
    REQUIRE(lossless.replicas_equal);
    for (std::size_t i = 0; i < every.x.size(); ++i) REQUIRE(lossless.x[i] == Approx(every.x[i]).margin(1e-4));

    const std::size_t n = 4096;
    std::vector<std::vector<float>> consensus(3), params(3);
    run_inproc(3, [&](inproc& t) {
        strategy::data_parallel<collective::compressed_allreduce, compress::cocktail<>, strategy::residual_sync<2>> dp;
        sgd inner(sgd_options{.lr = 0.1f});
        std::vector<float> x(n, 0.5f), g(n), e(n);
        for (int s = 1; s <= 6; ++s) {
            for (std::size_t i = 0; i < n; ++i) g[i] = std::sin(0.001f * static_cast<float>((i + 1) * (t.rank() + 1) * s));
            DTFM_RANK_REQUIRE(dp.step(t, std::span<float>(x), std::span<float>(g), inner) == (s % 2 == 0));
        }
        dp.collective().worker_residual(std::span<float>(e));
        const auto c = dp.sync().consensus();
        DTFM_RANK_REQUIRE(c.size() == n);
        for (std::size_t i = 0; i < n; ++i) DTFM_RANK_REQUIRE(x[i] + e[i] == Approx(c[i]).margin(1e-6));
        consensus[static_cast<std::size_t>(t.rank())].assign(c.begin(), c.end());
        params[static_cast<std::size_t>(t.rank())] = x;
    });
    REQUIRE(consensus[0] == consensus[1]);
    REQUIRE(consensus[0] == consensus[2]);
    REQUIRE(params[0] != params[1]);  // the residuals differ: cocktail held different values back
}

// Issue 5's convergence criteria. 16384 features over 4 ranks of 8192 rows: each rank serves a
// 4096-value segment, large enough for cocktail's default (10 % random, top 20 %, 4 bits) to
// compress about 90×. Same recipe for every run: plain SGD, lr 0.02, 3000 steps.
TEST_CASE("data_parallel convergence: cocktail within 1 percent, DiLoCo H=20 within 2 percent", "[data_parallel][convergence]") {
    const std::size_t features = 16384, rows = 8192;
    const int steps = 3000;
    const float lr = 0.02f;
    const auto full = train<exact>(4, features, rows, steps, lr);
    const auto cocktail = train<strategy::data_parallel<collective::compressed_allreduce, compress::cocktail<>>>(4, features, rows, steps, lr);
    const auto diloco = train<strategy::data_parallel<collective::ring, compress::identity, strategy::diloco<20>>>(4, features, rows, steps, lr);
    const auto residual = train<strategy::data_parallel<collective::compressed_allreduce, compress::cocktail<>, strategy::residual_sync<1>>>(
        4, features, rows, steps, lr);
    std::printf("least squares, 4 ranks, %d steps: uncompressed %.5f, cocktail %.5f (%.1fx fewer bytes), cocktail with residual_sync %.5f, "
                "diloco H=20 %.5f\n",
                steps, full.loss, cocktail.loss, cocktail.ratio, residual.loss, diloco.loss);
    INFO("uncompressed " << full.loss << ", cocktail " << cocktail.loss << " (ratio " << cocktail.ratio << "), diloco " << diloco.loss);
    REQUIRE(full.loss < 0.08);  // trained: from about 4.1 at x = 0 towards the noise floor 0.0625
    REQUIRE(cocktail.ratio >= 50);
    REQUIRE(cocktail.loss <= 1.01 * full.loss);
    // residual_sync is for adaptive optimizers (dtfm-train's AdamW, where local_sgd<1> stalls). Under
    // plain SGD on shards this underdetermined (2048 rows for 16384 features) each rank's residual
    // leans towards its own shard's solution, and the consensus lands about 1.33× above: a weaker
    // bar, stated as measured.
    REQUIRE(residual.loss <= 1.4 * full.loss);
    REQUIRE(diloco.loss <= 1.02 * full.loss);
    REQUIRE(cocktail.replicas_equal);
    REQUIRE(diloco.replicas_equal);
}

// Decentralized SGD: each rank mixes its parameters with its ring neighbours' after every local
// step; with 4-bit differences (CHOCO-SGD) too. Replicas agree only approximately, so the check
// is the mean loss, against the all-reduce run with the same recipe.
TEST_CASE("data_parallel decentralized: gossip on a ring tracks the all-reduce run", "[data_parallel][convergence]") {
    const std::size_t features = 2048, rows = 2048;
    const int steps = 600;
    const float lr = 0.05f;
    const auto full = train<exact>(4, features, rows, steps, lr);
    const auto plain = train<strategy::data_parallel<collective::gossip, compress::identity, strategy::decentralized>>(
        4, features, rows, steps, lr);
    using choco = collective::gossip<compress::quantize<4>>;
    struct choco_dp : strategy::data_parallel<collective::gossip, compress::quantize<4>, strategy::decentralized> {
        choco_dp(choco = choco(), strategy::decentralized = {})
            : data_parallel(choco(compress::quantize<4>(), 0.5f)) {}
    };
    const auto compressed = train<choco_dp>(4, features, rows, steps, lr);
    INFO("all-reduce " << full.loss << ", gossip " << plain.loss << ", gossip with 4-bit differences " << compressed.loss);
    REQUIRE(full.loss < 0.2);
    REQUIRE(plain.loss <= 1.02 * full.loss);
    REQUIRE(compressed.loss <= 1.02 * full.loss);
}

