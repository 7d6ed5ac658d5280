// sign<Block>: exact payload size, each value decoded to ±(mean |x| of its block) with its own sign,
// the mean-abs scale the L2-best one, non-finite blocks contained, and malformed headers refused.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "dtfm/compress/sign.hpp"
#include "dtfm/wire/endian.hpp"

using namespace dtfm::compress;

namespace {

std::vector<float> random_values(std::size_t n, float spread, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.5f, spread);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

template <class C>
std::vector<std::byte> encoded(C& c, const std::vector<float>& in) {
    std::vector<std::byte> payload(c.max_payload_bytes(in.size()));
    REQUIRE(c.encode(in, payload) == payload.size());
    return payload;
}

template <class C>
std::vector<float> decoded(C& c, const std::vector<std::byte>& payload, std::size_t n) {
    std::vector<float> out(n);
    c.decode(payload, out);
    return out;
}

}  // namespace

TEMPLATE_TEST_CASE("sign: payload size and header are exact", "[compress][sign]", sign<>, sign<8>, sign<136>) {
    constexpr std::size_t block = TestType::block;
    TestType c;
    for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{9}, block, block + 1, 5 * block - 3}) {
        const auto payload = encoded(c, random_values(n, 1.0f, 1));
        const std::size_t body = 4 * ((n + block - 1) / block) + (n + 7) / 8;
        REQUIRE(payload.size() == 32 + body);
        REQUIRE(c.max_payload_bytes(n) == 32 + body);
        REQUIRE(static_cast<kind>(payload[5]) == kind::sign);
        REQUIRE(dtfm::wire::load_le<std::uint16_t>(&payload[6]) == 1);  // the scale: mean |x|
        REQUIRE(dtfm::wire::load_le<std::uint32_t>(&payload[8]) == block);
        REQUIRE(dtfm::wire::load_le<std::uint64_t>(&payload[16]) == n);
        REQUIRE(dtfm::wire::load_le<std::uint64_t>(&payload[24]) == body);
        REQUIRE(decoded(c, payload, n).size() == n);
    }
}

TEMPLATE_TEST_CASE("sign: each value decodes to ±mean|x| of its block, with its sign", "[compress][sign]", sign<>,
                   sign<8>, sign<136>) {
    constexpr std::size_t block = TestType::block;
    TestType c;
    const std::size_t n = 4 * block + 5;
    auto in = random_values(n, 2.0f, 2);
    in[3] = 0.0f;   // +0 has a clear sign bit: +s
    in[4] = -0.0f;  // −0 has it set: −s
    const auto out = decoded(c, encoded(c, in), n);
    for (std::size_t first = 0; first < n; first += block) {
        const std::size_t len = std::min(block, n - first);
        double sum = 0.0;
        for (std::size_t i = first; i < first + len; ++i) sum += std::fabs(static_cast<double>(in[i]));
        const auto s = static_cast<float>(sum / static_cast<double>(len));
        for (std::size_t i = first; i < first + len; ++i) {
            // The library sums in a fixed lane order; the reference sums in order: both in double.
            REQUIRE(std::fabs(std::fabs(out[i]) - s) <= 1e-6f * s);
            REQUIRE(std::signbit(out[i]) == std::signbit(in[i]));
        }
        // The scale is L2-best: nudging it either way makes the block's squared error larger.
        auto sq_error = [&](float scale) {
            double e = 0.0;
            for (std::size_t i = first; i < first + len; ++i) {
                const double r = in[i] - std::copysign(static_cast<double>(scale), static_cast<double>(out[i]));
                e += r * r;
            }
            return e;
        };
        const float o = std::fabs(out[first]);
        REQUIRE(sq_error(o) < sq_error(o * 1.01f));
        REQUIRE(sq_error(o) < sq_error(o * 0.99f));
    }
}

TEST_CASE("sign: Inf and NaN stay in their block, huge finite values stay finite", "[compress][sign]") {
    sign<16> c;
    const float inf = std::numeric_limits<float>::infinity();
    auto in = random_values(48, 1.0f, 3);
    in[17] = inf;
    in[40] = std::numeric_limits<float>::quiet_NaN();
    const auto out = decoded(c, encoded(c, in), in.size());
    for (std::size_t i = 0; i < 48; ++i) {
        if (i < 16) REQUIRE(std::isfinite(out[i]));
        if (i >= 16 && i < 32) REQUIRE(std::isinf(out[i]));
        if (i >= 32) REQUIRE(std::isnan(out[i]));
    }
    const std::vector<float> huge(16, 3e38f);
    for (float v : decoded(c, encoded(c, huge), 16)) REQUIRE(v == 3e38f);
}

TEST_CASE("sign: decoders refuse malformed payloads with the reason", "[compress][sign]") {
    using reason = dtfm::wire_error::reason;
    constexpr std::size_t n = 70;
    sign<64> c;
    const auto good = encoded(c, random_values(n, 1.0f, 4));
    auto why_into = [&](const std::vector<std::byte>& p, std::size_t count) {
        std::vector<float> o(count);
        try {
            c.decode(p, o);
        } catch (const dtfm::wire_error& e) {
            return e.why();
        }
        FAIL("accepted a malformed payload");
        return reason::checksum_mismatch;
    };
    auto why = [&](const std::vector<std::byte>& p) { return why_into(p, n); };
    auto with_byte = [&](std::size_t at, std::uint8_t value) {
        auto p = good;
        p[at] = std::byte{value};
        return p;
    };
    REQUIRE(why(std::vector<std::byte>(good.begin(), good.begin() + 31)) == reason::truncated);
    REQUIRE(why(std::vector<std::byte>(good.begin(), good.end() - 1)) == reason::bad_length);
    auto longer = good;
    longer.push_back(std::byte{0});
    REQUIRE(why(longer) == reason::bad_length);
    REQUIRE(why_into(good, n + 1) == reason::bad_length);
    REQUIRE(why(with_byte(0, 0)) == reason::bad_magic);
    REQUIRE(why(with_byte(4, 2)) == reason::bad_version);
    REQUIRE(why(with_byte(5, static_cast<std::uint8_t>(kind::quantize))) == reason::bad_kind);
    REQUIRE(why(with_byte(6, 2)) == reason::bad_value);   // another scale rule
    REQUIRE(why(with_byte(8, 128)) == reason::bad_value); // another block size
    REQUIRE(why(with_byte(12, 1)) == reason::bad_value);  // param_c
    auto shorter = std::vector<std::byte>(good.begin(), good.end() - 1);
    dtfm::wire::store_le<std::uint64_t>(shorter.data() + 24, shorter.size() - 32);
    REQUIRE(why(shorter) == reason::bad_length);
    sign<128> other;
    REQUIRE(why(encoded(other, random_values(n, 1.0f, 4))) == reason::bad_value);

    // Every header byte changed is refused; any body decodes, in bounds (ASan in the asan preset).
    std::vector<float> out(n);
    for (std::size_t at = 0; at < good.size(); ++at) {
        auto p = good;
        p[at] ^= std::byte{0x81};
        INFO("byte " << at);
        if (at < 32) {
            REQUIRE_THROWS_AS(c.decode(p, out), dtfm::wire_error);
        } else {
            REQUIRE_NOTHROW(c.decode(p, out));
        }
    }
}

TEST_CASE("sign: encode refuses a payload buffer smaller than max_payload_bytes", "[compress][sign]") {
    sign<> c;
    const std::vector<float> in(300, 1.0f);
    std::vector<std::byte> small(c.max_payload_bytes(300) - 1);
    REQUIRE_THROWS_AS(c.encode(in, small), dtfm::error);
}
