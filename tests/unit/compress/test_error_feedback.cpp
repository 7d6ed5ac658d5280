// error_feedback<C>: the residual is exactly v − D(C(v)) after each call, the running mean of
// what a constant input decodes to converges to it (error ≤ C/T), and on a least-squares problem
// SGD with top-1% gradients reaches the optimum with error feedback and stalls without it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <limits>
#include <set>
#include <cmath>
#include <cstdint>
#include <random>
#include <ratio>
#include <span>
#include <type_traits>
#include <vector>

#include "dtfm/compress/cast.hpp"
#include "dtfm/compress/cocktail.hpp"
#include "dtfm/compress/error_feedback.hpp"
#include "dtfm/compress/identity.hpp"
#include "dtfm/compress/randomk.hpp"
#include "dtfm/compress/topk.hpp"

using namespace dtfm::compress;

namespace {

static_assert(dtfm::concepts::compressor<error_feedback<topk<>>>);
static_assert(dtfm::concepts::compressor<error_feedback<cast<fp16>>>);
static_assert(dtfm::concepts::compressor<error_feedback<error_feedback<cast<bf16>>>>);
// The sparse compressors take error_feedback's scatter path; the dense ones its decode path.
static_assert(scatter_decoder<topk<>> && scatter_decoder<topk_approx<>> && scatter_decoder<randomk<>> &&
              scatter_decoder<randomk<std::ratio<1, 10>, false>> && scatter_decoder<cocktail<>>);
static_assert(!scatter_decoder<cast<fp16>> && !scatter_decoder<identity> && !scatter_decoder<error_feedback<topk<>>>);

std::vector<float> random_values(std::size_t n, float spread, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, spread);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

// Encodes with c, decodes with a fresh receiver-side compressor (the payload must need no state).
template <class C, class Receiver>
std::vector<float> send(C& c, Receiver& receiver, std::span<const float> values) {
    std::vector<std::byte> payload(c.max_payload_bytes(values.size()));
    const std::size_t bytes = c.encode(values, payload);
    std::vector<float> out(values.size());
    receiver.decode(std::span(payload).first(bytes), out);
    return out;
}

// x ← x − lr · D(C(g)) with g the mean gradient of 20 random rows of ½‖Ax − b‖²; b = A x*.
// Returns ‖x − x*‖ / ‖x*‖ after `steps` steps.
template <class C>
double least_squares_sgd(C& c, int steps) {
    constexpr std::size_t m = 200, d = 100, batch = 20;
    constexpr float lr = 1.0f;
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    // Entries N(0, 1/d): rows of norm ≈ 1, and AᵀA/m has condition number ≈ 34 (200×100).
    std::vector<float> a(m * d), x_star(d), b(m), x(d, 0.0f), g(d), sent(d);
    for (auto& v : a) v = normal(rng) / std::sqrt(float{d});
    for (auto& v : x_star) v = normal(rng);
    for (std::size_t i = 0; i < m; ++i) {
        double s = 0;
        for (std::size_t j = 0; j < d; ++j) s += double{a[i * d + j]} * x_star[j];
        b[i] = static_cast<float>(s);
    }
    std::uniform_int_distribution<std::size_t> row(0, m - 1);
    std::vector<std::byte> payload(c.max_payload_bytes(d));
    for (int t = 0; t < steps; ++t) {
        std::fill(g.begin(), g.end(), 0.0f);
        for (std::size_t q = 0; q < batch; ++q) {
            const std::size_t i = row(rng);
            float r = -b[i];
            for (std::size_t j = 0; j < d; ++j) r += a[i * d + j] * x[j];
            for (std::size_t j = 0; j < d; ++j) g[j] += a[i * d + j] * r / float{batch};
        }
        const std::size_t bytes = c.encode(g, payload);
        c.decode(std::span(payload).first(bytes), sent);
        for (std::size_t j = 0; j < d; ++j) x[j] -= lr * sent[j];
    }
    double err = 0, norm = 0;
    for (std::size_t j = 0; j < d; ++j) {
        err += (double{x[j]} - x_star[j]) * (double{x[j]} - x_star[j]);
        norm += double{x_star[j]} * x_star[j];
    }
    return std::sqrt(err / norm);
}

// Non-finite values and signed zeros among the inputs: the residual must match bit for bit.
std::vector<float> with_specials(std::vector<float> v) {
    const float specials[] = {-std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity(), -0.0f, 0.0f, 1e-42f};
    for (std::size_t i = 0; i < v.size(); i += 97) v[i] = specials[(i / 97) % std::size(specials)];
    return v;
}


}  // namespace

TEST_CASE("error feedback: SGD with top-1% gradients reaches the least-squares optimum, plain top-k stalls",
          "[compress][error_feedback]") {
    // Every step sends 1 of 100 gradient coordinates. Plain top-k throws the other 99 away and
    // crawls (greedy coordinate descent on noisy gradients); error feedback sends them later.
    constexpr int steps = 10000;
    topk<> plain;
    error_feedback<topk<>> fed;
    const double with = least_squares_sgd(fed, steps);
    const double without = least_squares_sgd(plain, steps);
    INFO("relative error with error feedback " << with << ", without " << without);
    REQUIRE(with <= 1e-3);
    REQUIRE(without > 1e-2);
}


TEMPLATE_TEST_CASE("error feedback: the residual is v − D(C(v)) after every call", "[compress][error_feedback]",
                   cast<fp16>, cast<bf16>, topk<>, (topk<std::ratio<1, 10>>), topk_approx<>, randomk<>,
                   (randomk<std::ratio<1, 10>, false>), cocktail<>) {
    error_feedback<TestType> c;
    TestType receiver;
    REQUIRE(c.residual().empty());
    REQUIRE(c.max_payload_bytes(1000) == TestType{}.max_payload_bytes(1000));
    for (std::uint32_t step = 0; step < 20; ++step) {
        auto in = random_values(1000, 1.0f + static_cast<float>(step), 100 + step);
        if (step % 5 == 4) in = with_specials(std::move(in));
        const std::vector<float> before(c.residual().begin(), c.residual().end());
        const auto out = send(c, receiver, in);
        REQUIRE(c.residual().size() == in.size());
        for (std::size_t i = 0; i < in.size(); ++i) {
            const float v = feedback_input(in[i], step == 0 ? 0.0f : before[i]);
            // bitwise: the same float operations, NaNs made canonical the same way
            REQUIRE(std::bit_cast<std::uint32_t>(c.residual()[i]) == std::bit_cast<std::uint32_t>(feedback_residual(v, out[i])));
        }
    }
}

TEMPLATE_TEST_CASE("sparse decoders: decode_scatter visits exactly the kept positions, after every check",
                   "[compress][error_feedback]", topk<>, topk_approx<>, randomk<>, (randomk<std::ratio<1, 10>, false>),
                   cocktail<>) {
    TestType c;
    const auto in = random_values(5000, 1.0f, 21);
    std::vector<std::byte> payload(c.max_payload_bytes(in.size()));
    payload.resize(c.encode(in, payload));
    std::vector<float> decoded(in.size());
    c.decode(payload, decoded);

    // Assigning at the visited positions over a buffer of sevens gives decode's output there;
    // every other position keeps its seven, and decode wrote zero at it.
    std::vector<float> scattered(in.size(), 7.0f);
    std::set<const float*> visited;
    std::size_t calls = 0;
    c.decode_scatter(payload, std::span<float>(scattered), [&](float& o, float v) {
        ++calls;
        visited.insert(&o);
        o = v;
    });
    REQUIRE(calls == visited.size());
    REQUIRE(calls > 0);
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (visited.count(&scattered[i]) != 0) REQUIRE(scattered[i] == decoded[i]);
        else REQUIRE((scattered[i] == 7.0f && decoded[i] == 0.0f));
    }

    // A refused payload is refused before anything is visited.
    for (const std::size_t cut : {std::size_t{0}, std::size_t{31}, payload.size() - 1}) {
        std::size_t touched = 0;
        REQUIRE_THROWS_AS(c.decode_scatter(std::span<const std::byte>(payload).first(cut), std::span<float>(scattered),
                                           [&](float&, float) { ++touched; }),
                          dtfm::wire_error);
        REQUIRE(touched == 0);
    }
    auto bad = payload;
    bad[5] ^= std::byte{0xFF};
    std::size_t touched = 0;
    REQUIRE_THROWS_AS(c.decode_scatter(bad, std::span<float>(scattered), [&](float&, float) { ++touched; }), dtfm::wire_error);
    REQUIRE(touched == 0);
}


TEMPLATE_TEST_CASE("error feedback: the running mean of a constant input converges to it as 1/T",
                   "[compress][error_feedback]", cast<fp16>, topk<>) {
    // Σ_t D_t = T·x − e_T, so |mean − x| = |e_T| / T, and e_T stays bounded: by half an fp16 ulp,
    // or, for top-1 of 100, by about 100·|x|. Without error feedback the mean keeps C's bias.
    const auto x = random_values(100, 1.0f, 11);
    const float x_max = std::fabs(*std::max_element(x.begin(), x.end(), [](float p, float q) {
        return std::fabs(p) < std::fabs(q);
    }));
    const double bound = std::is_same_v<TestType, topk<>> ? 2.0 * 100 * x_max : 0x1p-10 * x_max;
    error_feedback<TestType> fed;
    TestType plain;
    TestType receiver;
    std::vector<double> sum_fed(x.size(), 0.0), sum_plain(x.size(), 0.0);
    int t = 0;
    for (const int checkpoint : {10, 100, 1000, 5000}) {
        for (; t < checkpoint; ++t) {
            const auto a = send(fed, receiver, x);
            const auto b = send(plain, receiver, x);
            for (std::size_t i = 0; i < x.size(); ++i) {
                sum_fed[i] += a[i];
                sum_plain[i] += b[i];
            }
        }
        double err_fed = 0, err_plain = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            err_fed = std::max(err_fed, std::fabs(sum_fed[i] / t - x[i]));
            err_plain = std::max(err_plain, std::fabs(sum_plain[i] / t - x[i]));
        }
        INFO("T = " << t << ": max error of the mean " << err_fed << " (plain C: " << err_plain << ")");
        REQUIRE(err_fed <= bound / t);
        if (t >= 1000) REQUIRE(err_plain > bound / t);
    }
}

TEST_CASE("error feedback: with identity the residual stays zero and the payload is identity's",
          "[compress][error_feedback]") {
    error_feedback<identity> c;
    identity receiver;
    const auto in = random_values(257, 2.0f, 3);
    REQUIRE(send(c, receiver, in) == in);
    REQUIRE(send(c, receiver, in) == in);
    for (const float r : c.residual()) REQUIRE(r == 0.0f);
}

TEST_CASE("error feedback: the tensor size is fixed until reset, and a failed encode keeps the residual",
          "[compress][error_feedback]") {
    error_feedback<cast<fp16>> c;
    cast<fp16> receiver;
    const auto in = random_values(64, 1.0f, 5);
    send(c, receiver, in);
    const std::vector<float> kept(c.residual().begin(), c.residual().end());
    REQUIRE(std::any_of(kept.begin(), kept.end(), [](float r) { return r != 0.0f; }));

    std::vector<std::byte> small(c.max_payload_bytes(64) - 1);
    REQUIRE_THROWS_AS(c.encode(in, small), dtfm::error);
    REQUIRE(std::equal(kept.begin(), kept.end(), c.residual().begin(), c.residual().end()));

    const auto other = random_values(65, 1.0f, 6);
    std::vector<std::byte> payload(c.max_payload_bytes(65));
    REQUIRE_THROWS_AS(c.encode(other, payload), dtfm::error);
    c.reset();
    REQUIRE(c.residual().empty());
    REQUIRE_NOTHROW(c.encode(other, payload));
    REQUIRE(c.residual().size() == 65);

    // The receiver side is C's decoder: a malformed payload is C's wire_error.
    std::vector<float> out(65);
    payload[5] = static_cast<std::byte>(kind::identity);
    REQUIRE_THROWS_AS(c.decode(payload, out), dtfm::wire_error);
}

TEST_CASE("error feedback: inner() reaches the wrapped compressor", "[compress][error_feedback]") {
    error_feedback<topk<>> c;
    topk<>& inner = c.inner();
    const error_feedback<topk<>>& cc = c;
    REQUIRE(&cc.inner() == &inner);
    REQUIRE(c.max_payload_bytes(1000) == inner.max_payload_bytes(1000));
}
