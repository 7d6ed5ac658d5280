// The per-group and per-lane math the CUDA kernels run (dtfm/cuda/*.cuh), checked here on the host
// against the host compressors' own payloads: a kernel that calls these functions the way these
// tests do writes the host's bytes. Covers partial groups, partial blocks, both roundings and
// non-finite values.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "dtfm/compress/delta.hpp"
#include "dtfm/compress/error_feedback.hpp"
#include "dtfm/compress/payload.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/compress/randomk.hpp"
#include "dtfm/compress/sign.hpp"
#include "dtfm/compress/topk.hpp"

using namespace dtfm::compress;

namespace {

std::vector<float> values_with_specials(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, 3.0f);
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = d(rng) + static_cast<float>(i / 300 % 3);
    if (n > 700) {
        v[517] = std::numeric_limits<float>::infinity();
        v[601] = -std::numeric_limits<float>::quiet_NaN();
        v[5] = -0.0f;
    }
    return v;
}

// The device kernel's encode, on the host: each block measured as 8-value parts combined in lane
// order, its grid, then every group of 8 codes on its own.
template <class Q>
std::vector<std::byte> encode_by_groups(const std::vector<float>& x, std::uint64_t seed, std::uint64_t call) {
    const std::size_t n = x.size();
    std::vector<std::byte> p(Q{}.max_payload_bytes(n));
    Q{}.encode(x, p);  // the header (the kernel writes the same 32 bytes); body overwritten below
    std::byte* scales = p.data() + payload_header::size;
    std::byte* codes = scales + Q::blocks(n) * Q::block_scale_bytes;
    for (std::size_t b = 0; b < Q::blocks(n); ++b) {
        const float* block = x.data() + b * Q::block;
        const std::size_t len = std::min(Q::block, n - b * Q::block);
        float f[Q::scale_fields];
        Q::scale_type::measure(block, std::min<std::size_t>(8, len), f);
        for (std::size_t j = 1; 8 * j < len; ++j) {
            float part[Q::scale_fields];
            Q::scale_type::measure(block + 8 * j, std::min<std::size_t>(8, len - 8 * j), part);
            Q::scale_type::combine(f, part);
        }
        std::memcpy(scales + Q::block_scale_bytes * b, f, Q::block_scale_bytes);
        const quant_grid g = Q::scale_type::template grid<Q::bits>(f);
        const std::uint32_t key = Q::block_key(seed, call, b);
        for (std::size_t j = 0; 8 * j < len; ++j) {
            Q::encode_group(block, len, g, key, j, codes + b * (Q::block / 8 * Q::bits));
        }
    }
    return p;
}

template <class Q>
std::vector<float> decode_by_groups(const std::vector<std::byte>& p, std::size_t n) {
    std::vector<float> out(n);
    const std::byte* scales = p.data() + payload_header::size;
    const std::byte* codes = scales + Q::blocks(n) * Q::block_scale_bytes;
    for (std::size_t b = 0; b < Q::blocks(n); ++b) {
        float f[Q::scale_fields];
        std::memcpy(f, scales + Q::block_scale_bytes * b, Q::block_scale_bytes);
        const quant_grid g = Q::scale_type::template grid<Q::bits>(f);
        const std::size_t len = std::min(Q::block, n - b * Q::block);
        for (std::size_t j = 0; 8 * j < len; ++j) {
            Q::decode_group(codes + b * (Q::block / 8 * Q::bits), len, g, j, out.data() + b * Q::block);
        }
    }
    return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), 4 * a.size()) == 0;
}

using quantizers = std::tuple<quantize<1, absmax, nearest, 64>, quantize<2, minmax, stochastic, 64>,
                              quantize<3, absmax, stochastic, 24>, quantize<3, minmax, nearest, 256>, quantize<4>,
                              quantize<4, minmax, stochastic, 128>, quantize<8, absmax, stochastic, 256>,
                              quantize<8, minmax, nearest, 8>>;

}  // namespace

TEMPLATE_LIST_TEST_CASE("quantize: per-group encode and decode give the host payload and values",
                        "[compress][quantize][device-math]", quantizers) {
    using Q = TestType;
    for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{13}, std::size_t{256}, std::size_t{1000},
                          std::size_t{4099}}) {
        INFO("n = " << n);
        const auto x = values_with_specials(n, static_cast<std::uint32_t>(n));
        Q host(11);
        std::vector<std::byte> expected(host.max_payload_bytes(n));
        host.encode(x, expected);
        std::vector<std::byte> again(host.max_payload_bytes(n));
        host.encode(x, again);  // call 1
        REQUIRE(encode_by_groups<Q>(x, 11, 0) == expected);
        REQUIRE(encode_by_groups<Q>(x, 11, 1) == again);
        std::vector<float> decoded(n);
        host.decode(expected, decoded);
        REQUIRE(same_bits(decode_by_groups<Q>(expected, n), decoded));
    }
}

TEST_CASE("quantize: measure over parts combined in any order equals measure over the block",
          "[compress][quantize][device-math]") {
    auto x = values_with_specials(1024, 3);
    for (float special : {0.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}) {
        x[77] = special;
        for (std::size_t len : {std::size_t{9}, std::size_t{256}, std::size_t{1024}}) {
            float whole_a[1], whole_m[2], a[1], m[2];
            absmax::measure(x.data(), len, whole_a);
            minmax::measure(x.data(), len, whole_m);
            // Parts taken last to first: the combine is order-free.
            const std::size_t parts = (len + 7) / 8;
            absmax::measure(x.data() + 8 * (parts - 1), len - 8 * (parts - 1), a);
            minmax::measure(x.data() + 8 * (parts - 1), len - 8 * (parts - 1), m);
            for (std::size_t j = parts - 1; j-- > 0;) {
                float pa[1], pm[2];
                absmax::measure(x.data() + 8 * j, 8, pa);
                minmax::measure(x.data() + 8 * j, 8, pm);
                absmax::combine(a, pa);
                minmax::combine(m, pm);
            }
            REQUIRE(std::bit_cast<std::uint32_t>(a[0]) == std::bit_cast<std::uint32_t>(whole_a[0]));
            REQUIRE(std::bit_cast<std::uint32_t>(m[0]) == std::bit_cast<std::uint32_t>(whole_m[0]));
            REQUIRE(std::bit_cast<std::uint32_t>(m[1]) == std::bit_cast<std::uint32_t>(whole_m[1]));
        }
    }
}

TEST_CASE("sign: 16 lane sums reduced pairwise give block_scale bit for bit", "[compress][sign][device-math]") {
    using S = sign<256>;
    const auto x = values_with_specials(4096, 9);
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{15}, std::size_t{17}, std::size_t{256},
                          std::size_t{300}}) {
        for (std::size_t offset : {std::size_t{0}, std::size_t{1000}}) {
            double acc[S::scale_lanes];
            for (std::size_t l = 0; l < S::scale_lanes; ++l) acc[l] = S::lane_sum(x.data() + offset, n, l);
            REQUIRE(std::bit_cast<std::uint32_t>(S::scale_of_lanes(acc, n)) ==
                    std::bit_cast<std::uint32_t>(S::block_scale(x.data() + offset, n)));
        }
    }
    // The sign bits of a group are the bits encode_block packs.
    std::byte packed[1];
    S::encode_block(x.data() + 3, 8, packed);
    REQUIRE(S::sign_bits(x.data() + 3, 8) == static_cast<std::uint32_t>(packed[0]));
}

TEST_CASE("randomk: stratum sizes and scaled values are those the host decoder writes",
          "[compress][randomk][device-math]") {
    for (std::size_t n : {std::size_t{1}, std::size_t{101}, std::size_t{12345}}) {
        randomk<std::ratio<3, 100>, true> c(4);
        c.set_context(2, 1);
        const std::size_t k = decltype(c)::k_for(n);
        std::vector<float> ones(n, 1.0f);
        std::vector<std::byte> p(c.max_payload_bytes(n));
        c.encode(ones, p);
        std::vector<float> out(n);
        c.decode(p, out);
        std::size_t total = 0;
        for (std::size_t i = 0; i < k; ++i) {
            const std::uint32_t size = randomk_stratum_size(i, n, k);
            total += size;
            REQUIRE(out[randomk_position(c.key(), i, n, k)] == randomk_decoded(1.0f, size, true));
        }
        REQUIRE(total == n);
        REQUIRE(randomk_decoded(2.5f, 7, false) == 2.5f);
    }
}

TEST_CASE("error_feedback and delta: the per-element updates are the adaptors' own",
          "[compress][error_feedback][delta][device-math]") {
    const auto g = values_with_specials(512, 5);
    error_feedback<quantize<2>> ef;
    std::vector<std::byte> p(ef.max_payload_bytes(g.size()));
    ef.encode(g, p);  // residual e1 = g − D(C(g)), as e0 = 0
    std::vector<float> decoded(g.size());
    quantize<2>{}.decode(p, decoded);
    for (std::size_t i = 0; i < g.size(); ++i) {
        const float expected = feedback_residual(feedback_input(g[i], 0.0f), decoded[i]);
        REQUIRE(std::bit_cast<std::uint32_t>(ef.residual()[i]) == std::bit_cast<std::uint32_t>(expected));
    }
    REQUIRE(delta_update(1.5f, -0.25f) == 1.25f);
}

TEST_CASE("topk: the device's order (key descending, index ascending) picks the host's top k",
          "[compress][topk][device-math]") {
    auto x = values_with_specials(5000, 21);
    for (std::size_t i = 0; i < 5000; i += 7) x[i] = 1.0f;  // many ties at the k-th largest
    topk<std::ratio<1, 20>> host;
    const std::size_t k = decltype(host)::k_for(x.size());
    std::vector<std::byte> p(host.max_payload_bytes(x.size()));
    host.encode(x, p);
    std::vector<std::uint32_t> order(x.size());
    for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
        return detail::magnitude_key(x[a]) > detail::magnitude_key(x[b]);
    });
    order.resize(k);
    std::sort(order.begin(), order.end());
    for (std::size_t j = 0; j < k; ++j) {
        std::uint32_t index = 0;
        std::memcpy(&index, p.data() + payload_header::size + 4 * j, 4);
        REQUIRE(index == order[j]);
    }
}

TEST_CASE("compressor math writes every NaN it computes as 0x7FFFFFFF, the GPU's one NaN", "[compress][device-math]") {
    const float inf = std::numeric_limits<float>::infinity();
    const float nan = -std::numeric_limits<float>::quiet_NaN();  // 0xFFC00000 on x86
    const auto bits = [](float v) { return std::bit_cast<std::uint32_t>(v); };
    REQUIRE(bits(feedback_residual(inf, inf)) == canonical_nan_bits);  // made by Inf − Inf
    REQUIRE(bits(feedback_input(nan, 1.0f)) == canonical_nan_bits);    // carried from an operand
    REQUIRE(bits(delta_update(inf, -inf)) == canonical_nan_bits);
    REQUIRE(bits(delta_difference(inf, inf)) == canonical_nan_bits);
    REQUIRE(bits(delta_difference(nan, 0.0f)) == canonical_nan_bits);
    REQUIRE(bits(randomk_decoded(nan, 3, true)) == canonical_nan_bits);
    REQUIRE(bits(randomk_decoded(nan, 3, false)) == bits(nan));  // unscaled: the value as sent
    REQUIRE(bits(canonical_nan(-inf)) == bits(-inf));
    REQUIRE(bits(canonical_nan(-0.0f)) == bits(-0.0f));

    std::vector<float> x(40, 1.0f);
    x[7] = nan;
    REQUIRE(bits(sign<>::block_scale(x.data(), x.size())) == canonical_nan_bits);

    // A quantize block holding +Inf and a NaN decodes to NaNs (Inf · 0 and the like): all canonical.
    std::vector<float> in(600, 0.5f);
    in[3] = inf;
    in[300] = nan;
    quantize<4> q;
    std::vector<std::byte> p(q.max_payload_bytes(in.size()));
    const std::size_t used = q.encode(in, p);
    std::vector<float> out(in.size());
    q.decode(std::span<const std::byte>(p).first(used), out);
    std::size_t nans = 0;
    for (const float v : out) {
        if (std::isnan(v)) {
            ++nans;
            REQUIRE(bits(v) == canonical_nan_bits);
        }
    }
    REQUIRE(nans > 0);
}
