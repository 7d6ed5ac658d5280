// identity and cast<fp16/bf16>: exact payload sizes, round trips within the format's precision,
// round to nearest even at the ties, Inf and NaN kept, and every malformed header refused.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <vector>

#include "dtfm/compress/cast.hpp"
#include "dtfm/compress/identity.hpp"

using namespace dtfm::compress;

namespace {

template <class C>
std::vector<float> round_trip(C& c, const std::vector<float>& in, std::size_t* payload_size = nullptr) {
    std::vector<std::byte> payload(c.max_payload_bytes(in.size()));
    const std::size_t n = c.encode(in, payload);
    if (payload_size) *payload_size = n;
    std::vector<float> out(in.size());
    c.decode(std::span(payload).first(n), out);
    return out;
}

std::vector<float> random_values(std::size_t n, float spread, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, spread);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

}  // namespace

TEST_CASE("identity: exact round trip and exact size", "[compress][identity]") {
    identity c;
    const auto in = random_values(1001, 3.0f, 1);
    std::size_t size = 0;
    REQUIRE(round_trip(c, in, &size) == in);
    REQUIRE(size == 32 + 4 * 1001);
    REQUIRE(c.max_payload_bytes(0) == 32);
    REQUIRE(round_trip(c, std::vector<float>{}).empty());
}

TEST_CASE("fp16: known values, ties to even, subnormals, Inf and NaN", "[compress][cast]") {
    REQUIRE(fp32_to_fp16(1.0f) == 0x3C00);
    REQUIRE(fp32_to_fp16(-2.0f) == 0xC000);
    REQUIRE(fp32_to_fp16(65504.0f) == 0x7BFF);
    REQUIRE(fp32_to_fp16(65519.0f) == 0x7BFF);
    REQUIRE(fp32_to_fp16(65520.0f) == 0x7C00);  // the midpoint to 65536 rounds (to even) to Inf
    REQUIRE(fp32_to_fp16(std::numeric_limits<float>::infinity()) == 0x7C00);
    REQUIRE(fp32_to_fp16(-std::numeric_limits<float>::infinity()) == 0xFC00);
    REQUIRE(fp32_to_fp16(0x1p-24f) == 0x0001);        // smallest subnormal
    REQUIRE(fp32_to_fp16(0x1p-25f) == 0x0000);        // half of it: a tie, to even (zero)
    REQUIRE(fp32_to_fp16(0x1.8p-24f) == 0x0002);      // 1.5 ulp: a tie, to even (2)
    REQUIRE(fp32_to_fp16(0x1p-14f) == 0x0400);        // smallest normal
    REQUIRE(fp32_to_fp16(1.0f + 0x1p-11f) == 0x3C00); // tie between 1 and 1+2^-10: even is 1
    REQUIRE(fp32_to_fp16(1.0f + 0x1.8p-10f) == 0x3C02);  // tie between odd 0x3C01 and 0x3C02
    REQUIRE(fp32_to_fp16(-0.0f) == 0x8000);
    const auto nan = fp32_to_fp16(std::numeric_limits<float>::quiet_NaN());
    REQUIRE((nan & 0x7C00) == 0x7C00);
    REQUIRE((nan & 0x03FF) != 0);
    REQUIRE(std::isnan(fp16_to_fp32(fp32_to_fp16(std::bit_cast<float>(0x7F800001u)))));  // signalling NaN
    REQUIRE(fp16_to_fp32(0x0001) == 0x1p-24f);
    REQUIRE(fp16_to_fp32(0x7BFF) == 65504.0f);
    REQUIRE(std::isinf(fp16_to_fp32(0xFC00)));
}

TEST_CASE("fp16: every half converts to float and back unchanged", "[compress][cast]") {
    for (std::uint32_t h = 0; h < 0x10000; ++h) {
        const float f = fp16_to_fp32(static_cast<std::uint16_t>(h));
        if (std::isnan(f)) {
            REQUIRE(std::isnan(fp16_to_fp32(fp32_to_fp16(f))));
        } else {
            REQUIRE(fp32_to_fp16(f) == h);
        }
    }
}

TEST_CASE("fp16 and bf16 round to the nearest representable value", "[compress][cast]") {
    // Against a reference: the nearest of the two neighbours found by exhaustive scan of halves.
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> d(-70000.0f, 70000.0f);
    for (int i = 0; i < 20000; ++i) {
        const float x = i % 2 ? d(rng) : d(rng) * 1e-6f;
        const float y = fp16_to_fp32(fp32_to_fp16(x));
        if (std::fabs(x) >= 65520.0f) {
            REQUIRE(std::isinf(y));
            continue;
        }
        const std::uint16_t h = fp32_to_fp16(y);
        const float up = fp16_to_fp32(static_cast<std::uint16_t>(h + 1));
        const float down = fp16_to_fp32(static_cast<std::uint16_t>(h - 1));
        REQUIRE(std::fabs(x - y) <= std::fabs(x - up));
        if ((h & 0x7FFF) != 0) REQUIRE(std::fabs(x - y) <= std::fabs(x - down));
    }
    REQUIRE(fp32_to_bf16(1.0f) == 0x3F80);
    REQUIRE(fp32_to_bf16(std::bit_cast<float>(0x3F808000u)) == 0x3F80);  // tie to even
    REQUIRE(fp32_to_bf16(std::bit_cast<float>(0x3F818000u)) == 0x3F82);  // tie to even (up)
    REQUIRE(fp32_to_bf16(std::bit_cast<float>(0x3F808001u)) == 0x3F81);
    REQUIRE(fp32_to_bf16(std::numeric_limits<float>::infinity()) == 0x7F80);
    REQUIRE(fp32_to_bf16(std::numeric_limits<float>::max()) == 0x7F80);  // rounds up to Inf
    REQUIRE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::bit_cast<float>(0x7F800001u)))));
    REQUIRE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEMPLATE_TEST_CASE("cast: payload size and relative error bound", "[compress][cast]", fp16, bf16) {
    cast<TestType> c;
    const auto in = random_values(4097, 10.0f, 5);
    std::size_t size = 0;
    const auto out = round_trip(c, in, &size);
    REQUIRE(size == 32 + 2 * in.size());
    // Relative error of round-to-nearest: 2^-11 for fp16, 2^-8 for bf16 (normal values).
    const float bound = std::is_same_v<TestType, fp16> ? 0x1p-11f : 0x1p-8f;
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (std::fabs(in[i]) < 1e-3f) continue;  // fp16 subnormal range: absolute error instead
        REQUIRE(std::fabs(out[i] - in[i]) <= bound * std::fabs(in[i]));
    }
}

// encode and decode run their first elements apart until a 64-byte boundary (and, built for F16C,
// take its instructions for the rest): every start address and length gives the per-value bits.
TEMPLATE_TEST_CASE("cast: every alignment and length gives the per-value conversion", "[compress][cast]", fp16, bf16) {
    cast<TestType> c;
    std::vector<float> values(200);
    std::mt19937 rng(9);
    for (auto& v : values) v = std::bit_cast<float>(static_cast<std::uint32_t>(rng()));  // NaNs, subnormals, all
    std::vector<std::byte> payload(c.max_payload_bytes(values.size()));
    std::vector<float> out(values.size() + 16);
    for (std::size_t offset = 0; offset < 16; ++offset) {
        for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{15}, std::size_t{33}, std::size_t{150}}) {
            const auto in = std::span<const float>(values).subspan(offset, n);
            const std::size_t bytes = c.encode(in, payload);
            for (std::size_t i = 0; i < n; ++i) {
                std::uint16_t h;
                std::memcpy(&h, payload.data() + 32 + 2 * i, 2);
                REQUIRE(h == TestType::from_float(in[i]));
            }
            const auto decoded = std::span<float>(out).subspan(offset, n);
            c.decode(std::span<const std::byte>(payload).first(bytes), decoded);
            for (std::size_t i = 0; i < n; ++i) {
                std::uint16_t h;
                std::memcpy(&h, payload.data() + 32 + 2 * i, 2);
                REQUIRE(std::bit_cast<std::uint32_t>(decoded[i]) == std::bit_cast<std::uint32_t>(TestType::to_float(h)));
            }
        }
    }
}

TEST_CASE("decoders refuse malformed payloads with the reason", "[compress][cast][identity]") {
    using reason = dtfm::wire_error::reason;
    cast<fp16> c;
    const std::vector<float> in(10, 1.5f);
    std::vector<std::byte> good(c.max_payload_bytes(10));
    c.encode(in, good);
    std::vector<float> out(10);
    auto why = [&](std::vector<std::byte> p, std::size_t n = 10) {
        std::vector<float> o(n);
        try {
            c.decode(p, o);
        } catch (const dtfm::wire_error& e) {
            return e.why();
        }
        FAIL("accepted a malformed payload");
        return reason::bad_value;
    };
    REQUIRE(why(std::vector<std::byte>(good.begin(), good.begin() + 20)) == reason::truncated);
    REQUIRE(why(std::vector<std::byte>(good.begin(), good.end() - 1)) == reason::bad_length);
    auto longer = good;
    longer.push_back(std::byte{0});
    REQUIRE(why(longer) == reason::bad_length);
    REQUIRE(why(good, 11) == reason::bad_length);
    auto p = good;
    p[0] = std::byte{0};
    REQUIRE(why(p) == reason::bad_magic);
    p = good;
    p[4] = std::byte{9};
    REQUIRE(why(p) == reason::bad_version);
    p = good;
    p[5] = static_cast<std::byte>(kind::identity);
    REQUIRE(why(p) == reason::bad_kind);
    p = good;
    p[6] = std::byte{2};  // a bf16 payload handed to the fp16 decoder
    REQUIRE(why(p) == reason::bad_value);
    // Body length field lying, consistently with the real size: refused by the parameters check.
    identity id;
    std::vector<std::byte> ip(id.max_payload_bytes(10));
    id.encode(in, ip);
    std::vector<float> o9(9);
    REQUIRE_THROWS_AS(id.decode(ip, o9), dtfm::wire_error);
    REQUIRE_NOTHROW(c.decode(good, out));
    REQUIRE(out == in);
}

TEST_CASE("encode refuses a payload buffer smaller than max_payload_bytes", "[compress]") {
    cast<bf16> c;
    const std::vector<float> in(8, 1.0f);
    std::vector<std::byte> small(c.max_payload_bytes(8) - 1);
    REQUIRE_THROWS_AS(c.encode(in, small), dtfm::error);
}
