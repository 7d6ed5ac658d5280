// randomk and the counter-based generator: k distinct stratified positions that depend on (seed,
// step, chunk) only, exact payload sizes and round trips, unbiasedness of the scaled decoder (and
// the bias of the unscaled one, so the check can fail), and every malformed payload refused.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <ratio>
#include <set>
#include <vector>

#include "dtfm/compress/randomk.hpp"

using namespace dtfm::compress;
using reason = dtfm::wire_error::reason;

namespace {

template <class C>
std::vector<std::uint32_t> positions_of(const C& c, std::size_t n) {
    std::vector<std::uint32_t> p(C::k_for(n));
    c.positions(n, p);
    return p;
}

template <class C>
std::vector<std::byte> encode(C& c, const std::vector<float>& x) {
    std::vector<std::byte> payload(c.max_payload_bytes(x.size()));
    REQUIRE(c.encode(x, payload) == payload.size());
    return payload;
}

std::vector<float> gaussian(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

// The size of the stratum holding position p when n is cut into k.
std::uint64_t stratum_size_of(std::uint64_t p, std::uint64_t n, std::uint64_t k) {
    for (std::uint64_t i = 0; i < k; ++i) {
        if (p < stratum_begin(i + 1, n, k)) return stratum_begin(i + 1, n, k) - stratum_begin(i, n, k);
    }
    return 0;
}

// Averages decode(encode(x)) over `steps` contexts, and counts the positions whose average lies more
// than 5 standard errors from x. One step's decode at p is s·x_p with probability 1/s (s its
// stratum's size), else 0: variance x_p²(s − 1).
template <class C>
std::size_t positions_off_by_5_se(const std::vector<float>& x, std::size_t steps) {
    C c(77);
    const std::size_t n = x.size();
    std::vector<double> sum(n, 0.0);
    std::vector<float> out(n);
    std::vector<std::byte> payload(c.max_payload_bytes(n));
    for (std::size_t step = 0; step < steps; ++step) {
        c.set_context(step, 3);
        c.encode(x, payload);
        c.decode(payload, out);
        for (std::size_t i = 0; i < n; ++i) sum[i] += out[i];
    }
    std::size_t off = 0;
    const std::size_t k = C::k_for(n);
    for (std::size_t i = 0; i < n; ++i) {
        const double s = static_cast<double>(stratum_size_of(i, n, k));
        const double se = std::fabs(x[i]) * std::sqrt((s - 1) / static_cast<double>(steps));
        off += std::fabs(sum[i] / static_cast<double>(steps) - x[i]) > 5 * se ? 1 : 0;
    }
    return off;
}

using quarter_scaled = randomk<std::ratio<1, 4>, true>;
using quarter_raw = randomk<std::ratio<1, 4>, false>;
using all_scaled = randomk<std::ratio<1, 1>, true>;
using third_raw = randomk<std::ratio<1, 3>, false>;

}  // namespace

TEST_CASE("random: counter-based draws are pure functions of (key, counter)", "[compress][randomk]") {
    REQUIRE(mix(1) != mix(2));
    REQUIRE(draw(5, 0) == draw(5, 0));
    REQUIRE(draw(5, 0) != draw(5, 1));
    REQUIRE(draw(5, 0) != draw(6, 0));
    REQUIRE(stream_key(1, 2, 3) == stream_key(1, 2, 3));
    REQUIRE(stream_key(1, 2, 3) != stream_key(1, 3, 2));
    REQUIRE(stream_key(1, 2, 3) != stream_key(2, 2, 3));
    // uniform01 in [0, 1) with mean 1/2; below(bits, b) in [0, b) with each value about equally likely.
    double mean = 0;
    std::vector<int> counts(7, 0);
    constexpr int draws = 70000;
    for (int i = 0; i < draws; ++i) {
        const float u = uniform01(draw(42, static_cast<std::uint64_t>(i)));
        REQUIRE(u >= 0.0f);
        REQUIRE(u < 1.0f);
        mean += u;
        ++counts[below(draw(43, static_cast<std::uint64_t>(i)), 7)];
    }
    REQUIRE(std::fabs(mean / draws - 0.5) < 5 * std::sqrt(1.0 / 12 / draws));
    for (int c : counts) REQUIRE(std::abs(c - draws / 7) < 5 * 95);  // sd = sqrt(draws·(1/7)(6/7)) ≈ 92.6
    REQUIRE(uniform01(~std::uint64_t{0}) < 1.0f);
    REQUIRE(below(~std::uint64_t{0}, 1) == 0);
}

TEST_CASE("randomk: exactly k distinct, increasing positions, one per stratum", "[compress][randomk]") {
    for (std::size_t n : {std::size_t{1}, std::size_t{2}, std::size_t{99}, std::size_t{100}, std::size_t{101},
                          std::size_t{1000}, std::size_t{12345}, std::size_t{1} << 20}) {
        INFO("n = " << n);
        randomk<> c(5);
        c.set_context(9, 2);
        const auto p = positions_of(c, n);
        const std::size_t k = randomk<>::k_for(n);
        REQUIRE(p.size() == k);
        for (std::size_t i = 0; i < k; ++i) {
            REQUIRE(p[i] >= stratum_begin(i, n, k));
            REQUIRE(p[i] < stratum_begin(i + 1, n, k));
            REQUIRE(p[i] == randomk_position(c.key(), i, n, k));  // the device-side formula agrees
        }
        REQUIRE(std::adjacent_find(p.begin(), p.end(), std::greater_equal<>{}) == p.end());
        REQUIRE(positions_of(third_raw(5), n).size() == third_raw::k_for(n));
    }
    // Fraction 1: every position, in order.
    const auto every = positions_of(all_scaled(1), 37);
    for (std::uint32_t i = 0; i < 37; ++i) REQUIRE(every[i] == i);
    std::vector<std::uint32_t> wrong(3);
    REQUIRE_THROWS_AS(randomk<>(1).positions(1000, wrong), dtfm::error);
}

TEST_CASE("randomk: positions depend on (seed, step, chunk) only", "[compress][randomk]") {
    constexpr std::size_t n = 100000;
    const auto x = gaussian(n, 1);
    randomk<> a(11), b(11);
    a.set_context(4, 7);
    b.set_context(4, 7);
    REQUIRE(positions_of(a, n) == positions_of(b, n));
    REQUIRE(encode(a, x) == encode(b, x));
    const auto base = positions_of(a, n);
    b.set_context(5, 7);
    REQUIRE(positions_of(b, n) != base);
    b.set_context(4, 8);
    REQUIRE(positions_of(b, n) != base);
    randomk<> other_seed(12);
    other_seed.set_context(4, 7);
    REQUIRE(positions_of(other_seed, n) != base);
    // Different contexts share about 1/stratum of their positions, as independent choices would.
    b.set_context(5, 7);
    const auto next = positions_of(b, n);
    std::size_t shared = 0;
    for (std::size_t i = 0; i < base.size(); ++i) shared += base[i] == next[i] ? 1 : 0;
    REQUIRE(shared < base.size() / 20);
}

TEMPLATE_TEST_CASE("randomk: payload layout, exact size and round trip", "[compress][randomk]", randomk<>,
                   quarter_raw, all_scaled) {
    TestType c(3);
    c.set_context(12, 1);
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{50}, std::size_t{1001}, std::size_t{40000}}) {
        INFO("n = " << n);
        const auto x = gaussian(n, static_cast<std::uint32_t>(n));
        const std::size_t k = TestType::k_for(n);
        const auto payload = encode(c, x);
        REQUIRE(payload.size() == 32 + 24 + 4 * k);
        const auto h = payload_header::read(payload, kind::randomk, n);
        REQUIRE(h.param_a == (TestType::scaled ? 1 : 0));
        REQUIRE(h.param_b == TestType::fraction::num);
        REQUIRE(h.param_c == TestType::fraction::den);
        REQUIRE(dtfm::wire::load_le<std::uint64_t>(payload.data() + 32) == 12);
        REQUIRE(dtfm::wire::load_le<std::uint64_t>(payload.data() + 40) == 1);
        REQUIRE(dtfm::wire::load_le<std::uint64_t>(payload.data() + 48) == 3);
        std::vector<float> out(n, 7.0f);
        c.decode(payload, out);
        const auto p = positions_of(c, n);
        std::size_t j = 0;
        for (std::size_t i = 0; i < n; ++i) {
            if (j < k && p[j] == i) {
                const float s =
                    TestType::scaled ? static_cast<float>(stratum_begin(j + 1, n, k) - stratum_begin(j, n, k)) : 1.0f;
                REQUIRE(out[i] == x[i] * s);
                ++j;
            } else {
                REQUIRE(out[i] == 0.0f);
            }
        }
    }
    std::vector<std::byte> small(c.max_payload_bytes(100) - 1);
    REQUIRE_THROWS_AS(c.encode(gaussian(100, 1), small), dtfm::error);
}

TEST_CASE("randomk scaled is unbiased over steps, unscaled is not", "[compress][randomk]") {
    // 1001 values in 250 strata of 4 or 5: each position's average over 2000 steps lies within 5
    // standard errors of x. The same check catches the unscaled decoder (bias (1 − 1/s)·x, about 15
    // standard errors here).
    const auto x = gaussian(1001, 8);
    REQUIRE(positions_off_by_5_se<quarter_scaled>(x, 2000) == 0);
    REQUIRE(positions_off_by_5_se<quarter_raw>(x, 2000) > 900);

    // Default fraction (strata of about 100): the sum of the decode is unbiased for the sum of x.
    // Per step its variance is Σ_strata (s·Σx² − (Σx)²), exactly.
    constexpr std::size_t n = 10007;
    constexpr std::size_t steps = 2000;
    const auto y = gaussian(n, 9);
    randomk<> c(1);
    const std::size_t k = randomk<>::k_for(n);
    double variance = 0;
    for (std::size_t i = 0; i < k; ++i) {
        double s1 = 0, s2 = 0;
        for (auto p = stratum_begin(i, n, k); p < stratum_begin(i + 1, n, k); ++p) {
            s1 += y[p];
            s2 += static_cast<double>(y[p]) * y[p];
        }
        variance += static_cast<double>(stratum_begin(i + 1, n, k) - stratum_begin(i, n, k)) * s2 - s1 * s1;
    }
    double truth = 0;
    for (float v : y) truth += v;
    double total = 0;
    std::vector<float> out(n);
    std::vector<std::byte> payload(c.max_payload_bytes(n));
    for (std::size_t step = 0; step < steps; ++step) {
        c.set_context(step, 0);
        c.encode(y, payload);
        c.decode(payload, out);
        for (float v : out) total += v;
    }
    REQUIRE(std::fabs(total / steps - truth) < 5 * std::sqrt(variance / steps));
}

TEST_CASE("randomk decoders refuse malformed payloads and foreign contexts", "[compress][randomk]") {
    randomk<std::ratio<1, 10>> c(100);
    c.set_context(6, 2);
    const auto x = gaussian(50, 30);  // k = 5
    const auto good = encode(c, x);
    auto why = [&](const std::vector<std::byte>& p, std::size_t n = 50) {
        std::vector<float> o(n, 7.0f);
        try {
            c.decode(p, o);
        } catch (const dtfm::wire_error& e) {
            for (float v : o) REQUIRE(v == 7.0f);  // refused before writing
            return e.why();
        }
        FAIL("accepted a malformed payload");
        return reason::bad_value;
    };
    REQUIRE(why(std::vector<std::byte>(good.begin(), good.begin() + 10)) == reason::truncated);
    REQUIRE(why(std::vector<std::byte>(good.begin(), good.end() - 1)) == reason::bad_length);
    auto longer = good;
    longer.push_back(std::byte{0});
    REQUIRE(why(longer) == reason::bad_length);
    REQUIRE(why(good, 49) == reason::bad_length);
    auto p = good;
    p[1] = std::byte{0};
    REQUIRE(why(p) == reason::bad_magic);
    p = good;
    p[4] = std::byte{0};
    REQUIRE(why(p) == reason::bad_version);
    p = good;
    p[5] = static_cast<std::byte>(kind::topk);
    REQUIRE(why(p) == reason::bad_kind);
    p = good;
    p[6] = std::byte{0};  // an unscaled payload handed to the scaled decoder
    REQUIRE(why(p) == reason::bad_value);
    p = good;
    p[12] = std::byte{20};  // fraction denominator
    REQUIRE(why(p) == reason::bad_value);
    // A consistent header whose body is sized for another k.
    p = good;
    dtfm::wire::store_le<std::uint64_t>(p.data() + 24, 24 + 4 * 6);
    p.resize(32 + 24 + 4 * 6);
    REQUIRE(why(p) == reason::bad_length);
    // The decoder's context must match the payload's.
    c.set_context(7, 2);
    REQUIRE(why(good) == reason::bad_value);
    c.set_context(6, 3);
    REQUIRE(why(good) == reason::bad_value);
    randomk<std::ratio<1, 10>> other_seed(101);
    other_seed.set_context(6, 2);
    std::vector<float> o(50);
    REQUIRE_THROWS_AS(other_seed.decode(good, o), dtfm::wire_error);
    randomk<std::ratio<1, 10>, false> unscaled(100);
    unscaled.set_context(6, 2);
    REQUIRE_THROWS_AS(unscaled.decode(good, o), dtfm::wire_error);
    c.set_context(6, 2);
    REQUIRE_NOTHROW(c.decode(good, o));
}

TEST_CASE("randomk decode survives every single-byte corruption", "[compress][randomk]") {
    // Each byte flipped three ways: every header or context change is refused; a changed value decodes
    // (in bounds: positions come from the decoder's own context).
    randomk<std::ratio<1, 4>> c(8);
    c.set_context(1, 1);
    const auto good = encode(c, gaussian(24, 40));
    std::vector<float> out(24);
    std::size_t refused = 0;
    for (std::size_t i = 0; i < good.size(); ++i) {
        for (unsigned flip : {0x01u, 0x80u, 0xFFu}) {
            auto p = good;
            p[i] ^= static_cast<std::byte>(flip);
            try {
                c.decode(p, out);
            } catch (const dtfm::wire_error&) {
                ++refused;
            }
        }
    }
    REQUIRE(refused == (32 + 24) * 3);
}
