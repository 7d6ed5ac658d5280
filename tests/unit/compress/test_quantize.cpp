// bitpack and quantize<Bits, Scale, Rounding, Block>: the bit layout, exact payload sizes, the error
// bound of each rounding, constant blocks and block extremes exact, stochastic rounding
// deterministic per seed and unbiased (where nearest is measurably biased), non-finite blocks
// contained, and every malformed header refused with its reason.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <tuple>
#include <type_traits>
#include <vector>

#include "dtfm/compress/bitpack.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/wire/endian.hpp"

using namespace dtfm::compress;

namespace {

// Every Bits × Scale × Rounding, with block sizes from the smallest (8) to larger than default.
using quantizers = std::tuple<
    quantize<1, absmax, nearest, 64>, quantize<1, absmax, stochastic, 256>, quantize<1, minmax, nearest, 8>,
    quantize<1, minmax, stochastic, 128>, quantize<2, absmax, nearest, 256>, quantize<2, absmax, stochastic, 8>,
    quantize<2, minmax, nearest, 128>, quantize<2, minmax, stochastic, 64>, quantize<3, absmax, nearest, 128>,
    quantize<3, absmax, stochastic, 64>, quantize<3, minmax, nearest, 24>, quantize<3, minmax, stochastic, 256>,
    quantize<4>, quantize<4, absmax, stochastic, 128>, quantize<4, minmax, nearest, 512>,
    quantize<4, minmax, stochastic, 16>, quantize<8, absmax, nearest, 1024>, quantize<8, absmax, stochastic, 8>,
    quantize<8, minmax, nearest, 256>, quantize<8, minmax, stochastic, 256>>;

std::vector<float> random_values(std::size_t n, float spread, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, spread);
    std::vector<float> v(n);
    // Some blocks sit off zero, so minmax and absmax ranges differ.
    for (std::size_t i = 0; i < n; ++i) v[i] = d(rng) + ((i / 8) % 3 == 1 ? 4.0f * spread : 0.0f);
    return v;
}

template <class C>
std::vector<std::byte> encoded(C& c, const std::vector<float>& in) {
    std::vector<std::byte> payload(c.max_payload_bytes(in.size()));
    const std::size_t n = c.encode(in, payload);
    REQUIRE(n == payload.size());
    return payload;
}

template <class C>
std::vector<float> decoded(C& c, const std::vector<std::byte>& payload, std::size_t n) {
    std::vector<float> out(n);
    c.decode(payload, out);
    return out;
}

// The range the test expects a block to be spread over, computed here, not by the library.
template <class Q>
std::pair<float, float> expected_range(const float* x, std::size_t n) {
    if constexpr (std::is_same_v<typename Q::scale_type, absmax>) {
        float m = 0.0f;
        for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
        return {-m, m};
    } else {
        const auto [lo, hi] = std::minmax_element(x, x + n);
        return {*lo, *hi};
    }
}

constexpr bool stochastic_rounding(auto q) { return std::is_same_v<typename decltype(q)::rounding_type, stochastic>; }

}  // namespace

TEST_CASE("bitpack: code i occupies bits i·b to i·b + b − 1, little-endian", "[compress][bitpack]") {
    auto check = [](auto bits_constant) {
        constexpr int b = decltype(bits_constant)::value;
        std::mt19937 rng(b);
        for (std::size_t n = 0; n <= 41; ++n) {
            std::vector<std::uint8_t> codes(n);
            for (auto& c : codes) c = static_cast<std::uint8_t>(rng() & ((1u << b) - 1u));
            // Reference: set each bit of the stream one at a time.
            std::vector<std::byte> want((n * b + 7) / 8, std::byte{0});
            for (std::size_t i = 0; i < n; ++i) {
                for (int k = 0; k < b; ++k) {
                    const std::size_t bit = i * b + static_cast<std::size_t>(k);
                    if ((codes[i] >> k) & 1u) want[bit / 8] |= static_cast<std::byte>(1u << (bit % 8));
                }
            }
            REQUIRE(packed_bytes<b>(n) == want.size());
            std::vector<std::byte> packed(packed_bytes<b>(n));  // exact size: ASan sees any overrun
            pack_bits<b>(codes, packed.data());
            REQUIRE(packed == want);
            std::vector<std::uint8_t> back(n);
            unpack_bits<b>(packed.data(), back);
            REQUIRE(back == codes);
        }
    };
    check(std::integral_constant<int, 1>{});
    check(std::integral_constant<int, 2>{});
    check(std::integral_constant<int, 3>{});
    check(std::integral_constant<int, 4>{});
    check(std::integral_constant<int, 8>{});
}

TEST_CASE("bitpack: known bytes, masking, padding bits ignored", "[compress][bitpack]") {
    const std::vector<std::uint8_t> eight{1, 2, 3, 4, 5, 6, 7, 0};
    std::byte out3[3];
    pack_bits<3>(eight, out3);
    // 0b000'111'110'101'100'011'010'001 = 0x1F58D1 over 24 bits
    REQUIRE(out3[0] == std::byte{0xD1});
    REQUIRE(out3[1] == std::byte{0x58});
    REQUIRE(out3[2] == std::byte{0x1F});
    std::byte out4[1];
    pack_bits<4>(std::vector<std::uint8_t>{0xFA, 0x1C}, out4);  // high bits of each code dropped
    REQUIRE(out4[0] == std::byte{0xCA});
    std::byte out1[1];
    pack_bits<1>(std::vector<std::uint8_t>{1, 0, 1}, out1);  // 3 codes, the 5 unused bits zero
    REQUIRE(out1[0] == std::byte{0x05});
    std::vector<std::uint8_t> three(3);
    const std::byte dirty[1] = {std::byte{0xFD}};  // padding bits set: ignored
    unpack_bits<1>(dirty, three);
    REQUIRE(three == std::vector<std::uint8_t>{1, 0, 1});
    REQUIRE(packed_bytes<3>(0) == 0);
    REQUIRE(packed_bytes<3>(1) == 1);
    REQUIRE(packed_bytes<3>(3) == 2);
    REQUIRE(packed_bytes<3>(8) == 3);
    REQUIRE(packed_bytes<3>(9) == 4);
    constexpr std::size_t huge = std::numeric_limits<std::size_t>::max() / 8;
    REQUIRE(packed_bytes<8>(huge) == huge);  // no overflow in n·b
}

TEMPLATE_LIST_TEST_CASE("quantize: payload size and header are exact", "[compress][quantize]", quantizers) {
    constexpr std::size_t block = TestType::block;
    constexpr std::size_t bits = TestType::bits;
    constexpr std::size_t scale_bytes = std::is_same_v<typename TestType::scale_type, absmax> ? 4 : 8;
    TestType q;
    for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, block - 1, block, block + 1,
                                3 * block + 5}) {
        const auto in = random_values(n, 2.0f, static_cast<std::uint32_t>(n));
        const auto payload = encoded(q, in);
        const std::size_t blocks = (n + block - 1) / block;
        const std::size_t body = blocks * scale_bytes + (n * bits + 7) / 8;
        REQUIRE(payload.size() == 32 + body);
        REQUIRE(q.max_payload_bytes(n) == 32 + body);
        const std::byte* p = payload.data();
        REQUIRE(static_cast<kind>(p[5]) == kind::quantize);
        const auto param_a = dtfm::wire::load_le<std::uint16_t>(p + 6);
        REQUIRE((param_a & 0xF) == bits);
        REQUIRE(((param_a >> 4) & 3) == (std::is_same_v<typename TestType::scale_type, absmax> ? 0 : 1));
        REQUIRE(((param_a >> 6) & 3) == (stochastic_rounding(q) ? 1 : 0));
        REQUIRE(dtfm::wire::load_le<std::uint32_t>(p + 8) == block);
        REQUIRE(dtfm::wire::load_le<std::uint64_t>(p + 16) == n);
        REQUIRE(dtfm::wire::load_le<std::uint64_t>(p + 24) == body);
        REQUIRE(decoded(q, payload, n).size() == n);
    }
}

TEMPLATE_LIST_TEST_CASE("quantize: error within the rounding bound, levels per block", "[compress][quantize]",
                        quantizers) {
    constexpr std::size_t block = TestType::block;
    constexpr auto top = static_cast<float>((1u << TestType::bits) - 1u);
    TestType q(11);
    const std::size_t n = 3 * block + 5;  // a partial last block
    const auto in = random_values(n, 3.0f, 2);
    const auto out = decoded(q, encoded(q, in), n);
    float worst = 0.0f;  // the largest error as a fraction of the step
    for (std::size_t first = 0; first < n; first += block) {
        const std::size_t len = std::min(block, n - first);
        const auto [lo, hi] = expected_range<TestType>(&in[first], len);
        const float step = (hi - lo) / top;
        // Float rounding of t = (x − lo)/step and of lo + code·step: a few ulps of the range's ends.
        const float slack = 1e-6f * (std::fabs(lo) + std::fabs(hi));
        std::set<float> levels;
        for (std::size_t i = first; i < first + len; ++i) {
            const float err = std::fabs(in[i] - out[i]);
            if (stochastic_rounding(q)) {
                REQUIRE(err < step + slack);
            } else {
                REQUIRE(err <= 0.5f * step + slack);
            }
            REQUIRE(out[i] >= lo);
            REQUIRE(out[i] <= hi);
            worst = std::max(worst, err / step);
            levels.insert(out[i]);
        }
        REQUIRE(levels.size() <= (std::size_t{1} << TestType::bits));
    }
    // The bound is not vacuous: some value lands well away from its level.
    REQUIRE(worst > 0.25f);
}

TEMPLATE_LIST_TEST_CASE("quantize: constant blocks and block extremes decode exactly", "[compress][quantize]",
                        quantizers) {
    constexpr std::size_t block = TestType::block;
    TestType q(3);
    const std::vector<float> constants{3.25f, -7.5f, 0.0f, 1e-30f, -6e37f, 42.0f};
    std::vector<float> in;
    for (float c : constants) in.insert(in.end(), block, c);
    in.resize(in.size() - block / 2);  // the last constant block is partial
    const auto out = decoded(q, encoded(q, in), in.size());
    REQUIRE(out == in);
    for (std::size_t i = 0; i < in.size(); i += block) REQUIRE(std::signbit(out[i]) == std::signbit(in[i]));

    // The ends of each block's range are levels: minmax's min and max, absmax's ±max|x|.
    const auto noisy = random_values(4 * block, 1.0f, 9);
    const auto back = decoded(q, encoded(q, noisy), noisy.size());
    for (std::size_t first = 0; first < noisy.size(); first += block) {
        const auto [lo, hi] = expected_range<TestType>(&noisy[first], block);
        for (std::size_t i = first; i < first + block; ++i) {
            if (noisy[i] == lo || noisy[i] == hi) REQUIRE(back[i] == noisy[i]);
        }
    }
}

TEST_CASE("quantize: the top of a range maps to the top code, ties round to even", "[compress][quantize]") {
    // make_quant_grid nudges 1/step up where rounding left (hi − lo)/step below the top code (about
    // 1 block in 10): otherwise stochastic rounding could, rarely, round a block's max down.
    std::mt19937 rng(14);
    std::uniform_real_distribution<float> d(1e-3f, 1e3f);
    for (int i = 0; i < 20000; ++i) {
        const float lo = -d(rng);
        const float hi = d(rng);
        REQUIRE((hi - lo) * make_quant_grid<1>(lo, hi).inv_step >= 1.0f);
        REQUIRE((hi - lo) * make_quant_grid<3>(lo, hi).inv_step >= 7.0f);
        REQUIRE((hi - lo) * make_quant_grid<8>(lo, hi).inv_step >= 255.0f);
    }
    // minmax over [0, 3] with 2 bits: step 1, so 0.5, 1.5, 2.5 are ties; nearest picks the even code.
    quantize<2, minmax, nearest, 8> q;
    const std::vector<float> in{0.0f, 0.5f, 1.5f, 2.5f, 3.0f, 1.25f, 1.75f, 2.0f};
    std::vector<std::byte> payload(q.max_payload_bytes(in.size()));
    q.encode(in, payload);
    std::vector<float> out(in.size());
    q.decode(payload, out);
    REQUIRE(out == std::vector<float>{0.0f, 0.0f, 2.0f, 2.0f, 3.0f, 1.0f, 2.0f, 2.0f});
}

TEMPLATE_LIST_TEST_CASE("quantize: the same seed gives the same bytes", "[compress][quantize]", quantizers) {
    const auto in = random_values(2 * TestType::block + 3, 1.0f, 4);
    TestType a(42), b(42), other(43);
    const auto a1 = encoded(a, in);
    const auto a2 = encoded(a, in);
    REQUIRE(encoded(b, in) == a1);
    REQUIRE(encoded(b, in) == a2);
    REQUIRE(a.calls() == 2);
    const auto o1 = encoded(other, in);
    if (stochastic_rounding(a)) {
        REQUIRE(a2 != a1);  // the call counter moved the random numbers
        REQUIRE(o1 != a1);  // so did the seed
    } else {
        REQUIRE(a2 == a1);
        REQUIRE(o1 == a1);
    }
}

TEMPLATE_LIST_TEST_CASE("quantize: stochastic rounding is unbiased, nearest is not", "[compress][quantize]",
                        quantizers) {
    // One block holding −1 and 1 (so lo = −1, hi = 1 for both scales) and values a fraction f of a
    // step above a level. Over N encodes x̂ averages to x for stochastic rounding, within 5 standard
    // errors (σ = step·√(f(1−f)) per draw) plus the documented 2^-14 step of float-rounding bias.
    constexpr auto top = (1u << TestType::bits) - 1u;
    constexpr std::size_t n = std::min<std::size_t>(TestType::block, 16);
    constexpr int draws = 20000;
    const float step = 2.0f / static_cast<float>(top);
    const float fractions[] = {0.1f, 0.25f, 0.3f, 0.5f, 0.7f, 0.9f, 0.05f};
    std::vector<float> in(n);
    std::vector<float> frac(n, 0.0f);
    in[0] = -1.0f;
    in[1] = 1.0f;
    for (std::size_t j = 2; j < n; ++j) {
        const auto level = static_cast<float>((j * 5) % top);
        frac[j] = fractions[j % 7];
        in[j] = -1.0f + (level + frac[j]) * step;
    }
    TestType q(5);
    std::vector<std::byte> payload(q.max_payload_bytes(n));
    std::vector<float> out(n);
    std::vector<double> sum(n, 0.0);
    for (int d = 0; d < draws; ++d) {
        q.encode(in, payload);
        q.decode(payload, out);
        for (std::size_t j = 0; j < n; ++j) sum[j] += out[j];
    }
    for (std::size_t j = 0; j < n; ++j) {
        const double mean = sum[j] / draws;
        const double f = frac[j];
        const double se = step * std::sqrt(f * (1.0 - f) / draws);
        const double tolerance = 5.0 * se + 0x1p-14 * step + 1e-6;
        INFO("x = " << in[j] << ", f = " << f << ", mean of x^ = " << mean);
        if (stochastic_rounding(q)) {
            REQUIRE(std::fabs(mean - in[j]) <= tolerance);
        } else if (f > 0.0) {
            // Nearest always lands on the same level: off by min(f, 1 − f) steps.
            REQUIRE(std::fabs(mean - in[j]) > tolerance);
        }
    }
}

TEMPLATE_LIST_TEST_CASE("quantize: Inf and NaN stay in their block", "[compress][quantize]", quantizers) {
    constexpr std::size_t block = TestType::block;
    const float inf = std::numeric_limits<float>::infinity();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (const float bad : {nan, -nan, inf, -inf}) {
        auto in = random_values(3 * block, 1.0f, 6);
        in[block + 3] = bad;
        TestType q;
        const auto out = decoded(q, encoded(q, in), in.size());
        for (std::size_t i = 0; i < in.size(); ++i) {
            if (i >= block && i < 2 * block) {
                REQUIRE(std::isnan(out[i]));
            } else {
                const auto [lo, hi] = expected_range<TestType>(&in[i / block * block], block);
                REQUIRE(out[i] >= lo);  // finite, in its block's range; the exact bound is tested above
                REQUIRE(out[i] <= hi);
            }
        }
    }
    // A finite block whose range overflows fp32 is documented to decode to NaN, not to garbage.
    if constexpr (std::is_same_v<typename TestType::scale_type, minmax>) {
        std::vector<float> in(block, 0.0f);
        in[0] = -3e38f;
        in[1] = 3e38f;
        TestType q;
        for (float v : decoded(q, encoded(q, in), in.size())) REQUIRE(std::isnan(v));
    }
}

TEMPLATE_LIST_TEST_CASE("quantize: the block functions write what encode writes", "[compress][quantize]",
                        quantizers) {
    // A later compressor (cocktail) quantizes its kept values with encode_block/decode_block.
    constexpr std::size_t n = TestType::block - 3;
    const auto in = random_values(n, 1.0f, 8);
    TestType q(77);
    const auto payload = encoded(q, in);
    const std::size_t scale_bytes = TestType::block_scale_bytes;
    float fields[TestType::scale_fields];
    std::vector<std::byte> packed(packed_bytes<TestType::bits>(n));
    TestType::encode_block(in.data(), n, TestType::block_key(77, 0, 0), fields, packed.data());
    for (std::size_t k = 0; k < TestType::scale_fields; ++k) {
        REQUIRE(std::bit_cast<std::uint32_t>(fields[k]) == dtfm::wire::load_le<std::uint32_t>(&payload[32 + 4 * k]));
    }
    REQUIRE(std::equal(packed.begin(), packed.end(), payload.begin() + 32 + static_cast<std::ptrdiff_t>(scale_bytes)));
    std::vector<float> out(n);
    TestType::decode_block(packed.data(), n, fields, out.data());
    REQUIRE(out == decoded(q, payload, n));
}

TEMPLATE_LIST_TEST_CASE("quantize: decoders refuse malformed payloads with the reason", "[compress][quantize]",
                        quantizers) {
    using reason = dtfm::wire_error::reason;
    constexpr std::size_t n = TestType::block + 9;
    TestType q(1);
    const auto good = encoded(q, random_values(n, 1.0f, 10));
    auto why_into = [&](const std::vector<std::byte>& p, std::size_t count) {
        std::vector<float> o(count);
        try {
            q.decode(p, o);
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
    REQUIRE(why_into(good, n - 1) == reason::bad_length);
    REQUIRE(why(with_byte(0, 0)) == reason::bad_magic);
    REQUIRE(why(with_byte(4, 2)) == reason::bad_version);
    REQUIRE(why(with_byte(5, static_cast<std::uint8_t>(kind::sign))) == reason::bad_kind);
    const auto a = static_cast<std::uint8_t>(TestType::param_a);
    const auto other_bits = static_cast<std::uint8_t>((a & 0xF0) | (TestType::bits == 4 ? 8 : 4));
    REQUIRE(why(with_byte(6, other_bits)) == reason::bad_value);
    REQUIRE(why(with_byte(6, a ^ 0x10)) == reason::bad_value);   // the other scale
    REQUIRE(why(with_byte(6, a ^ 0x40)) == reason::bad_value);   // the other rounding
    REQUIRE(why(with_byte(7, 1)) == reason::bad_value);          // reserved bits of param_a
    REQUIRE(why(with_byte(8, static_cast<std::uint8_t>(TestType::block + 8))) == reason::bad_value);  // block
    REQUIRE(why(with_byte(12, 1)) == reason::bad_value);         // param_c
    // A body one byte short, with a header that agrees with it: the parameters' size check refuses it.
    auto shorter = std::vector<std::byte>(good.begin(), good.end() - 1);
    dtfm::wire::store_le<std::uint64_t>(shorter.data() + 24, shorter.size() - 32);
    REQUIRE(why(shorter) == reason::bad_length);
    // A payload of another quantizer of the same n.
    using scale = typename TestType::scale_type;
    using rounding = typename TestType::rounding_type;
    using other = std::conditional_t<TestType::bits == 8, quantize<4, scale, rounding, TestType::block>,
                                     quantize<8, scale, rounding, TestType::block>>;
    other o;
    REQUIRE(why(encoded(o, random_values(n, 1.0f, 10))) == reason::bad_value);
    REQUIRE_NOTHROW(decoded(q, good, n));
}

TEMPLATE_LIST_TEST_CASE("quantize: every corrupted byte is refused or decoded in bounds", "[compress][quantize]",
                        quantizers) {
    // Header bytes are all checked exactly, so any change is refused; any body decodes (run under
    // ASan by the asan preset: no read or write out of bounds).
    constexpr std::size_t n = TestType::block / 2 + 3;
    TestType q(2);
    const auto good = encoded(q, random_values(n, 1.0f, 12));
    std::vector<float> out(n);
    for (std::size_t at = 0; at < good.size(); ++at) {
        for (const std::uint8_t mask : {std::uint8_t{0x01}, std::uint8_t{0x80}, std::uint8_t{0xFF}}) {
            auto p = good;
            p[at] ^= std::byte{mask};
            INFO("byte " << at << " ^ " << int(mask));
            if (at < 32) {
                REQUIRE_THROWS_AS(q.decode(p, out), dtfm::wire_error);
            } else {
                REQUIRE_NOTHROW(q.decode(p, out));
            }
        }
    }
    // Random bytes of random lengths, some behind a valid header.
    std::mt19937 rng(13);
    for (int trial = 0; trial < 200; ++trial) {
        std::vector<std::byte> p(rng() % (good.size() + 16));
        for (auto& b : p) b = static_cast<std::byte>(rng());
        if (trial % 2 && p.size() >= 32) std::copy(good.begin(), good.begin() + 32, p.begin());
        try {
            q.decode(p, out);
        } catch (const dtfm::wire_error&) {
        }
    }
}

TEST_CASE("quantize: encode refuses a payload buffer smaller than max_payload_bytes", "[compress][quantize]") {
    quantize<4> q;
    const std::vector<float> in(300, 1.0f);
    std::vector<std::byte> small(q.max_payload_bytes(300) - 1);
    REQUIRE_THROWS_AS(q.encode(in, small), dtfm::error);
    REQUIRE(q.calls() == 0);
}
