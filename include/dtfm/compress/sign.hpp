// sign<Block>: one bit per value, its sign, and one fp32 scale per block, s = mean |x| over the
// block; a value decodes to +s or −s (signSGD with a scale, the compression of 1-bit Adam).
// For fixed signs the squared error Σ(x_i − ±s)² = Σ(|x_i| − s)² is least at s = mean |x|, so this
// is the L2-best scale. 1-bit Adam scales by ‖x‖/√n, the RMS, which is never below mean |x|
// (Cauchy–Schwarz) and overshoots by the spread of the magnitudes; both converge with error
// feedback, and the smaller error here leaves a smaller residual to carry.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>

#include "dtfm/compress/canonical_nan.hpp"
#include "dtfm/compress/bitpack.hpp"
#include "dtfm/compress/payload.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/config.hpp"
#include "dtfm/spaces.hpp"
#include "dtfm/wire/endian.hpp"

namespace dtfm::compress {

// Payload (after the 32-byte header: kind::sign, param_a = 1 (the scale: mean |x|), param_b =
// Block, param_c = 0, count = n): the ⌈n / Block⌉ block scales as little-endian fp32, then n bits,
// packed as bitpack.hpp describes: bit i is the IEEE sign bit of value i (1 for negative values,
// −0 and negative NaNs), and decodes to −s; a clear bit decodes to +s (so 0 decodes to +s).
//
// Non-finite inputs: a block holding ±Inf gets s = Inf and decodes to ±Inf, one holding NaN gets
// s = NaN and decodes to NaN; other blocks are unaffected. The mean is summed in double, so finite
// inputs always give a finite scale. Every path is branch-free.
template <std::size_t Block = 256>
class sign {
    static_assert(Block >= 8 && Block <= 65536 && Block % 8 == 0, "sign: Block must be a multiple of 8 in [8, 65536]");

public:
    using compressor_concept = compressor_tag;
    using value_type = float;
    using memory_space = host_space;

    static constexpr std::size_t block = Block;
    static constexpr std::uint16_t mean_abs_scale = 1;  // param_a: which scale the payload carries

    static constexpr std::size_t blocks(std::size_t n) { return n / Block + (n % Block != 0 ? 1 : 0); }
    static constexpr std::size_t body_bytes(std::size_t n) { return 4 * blocks(n) + packed_bytes<1>(n); }
    std::size_t max_payload_bytes(std::size_t n) const { return payload_header::size + body_bytes(n); }

    std::size_t encode(std::span<const float> values, std::span<std::byte> payload) {
        const std::size_t n = values.size();
        const std::size_t bytes = max_payload_bytes(n);
        check_capacity(payload, bytes, "sign");
        const auto block_param = static_cast<std::uint32_t>(Block);
        payload_header{kind::sign, mean_abs_scale, block_param, 0, n, body_bytes(n)}.write(payload);
        std::byte* scales = payload.data() + payload_header::size;
        std::byte* bits = scales + 4 * blocks(n);
        for (std::size_t b = 0; b < blocks(n); ++b) {
            const std::size_t first = b * Block;
            const std::size_t len = n - first < Block ? n - first : Block;
            const float s = encode_block(values.data() + first, len, bits + first / 8);
            wire::store_le<std::uint32_t>(scales + 4 * b, std::bit_cast<std::uint32_t>(s));
        }
        return bytes;
    }

    // Any scales and bits decode; only the header and the length can be malformed.
    void decode(std::span<const std::byte> payload, std::span<float> out) {
        const std::size_t n = out.size();
        check_header(payload_header::read(payload, kind::sign, n), n);
        const std::byte* scales = payload.data() + payload_header::size;
        const std::byte* bits = scales + 4 * blocks(n);
        for (std::size_t b = 0; b < blocks(n); ++b) {
            const std::size_t first = b * Block;
            const std::size_t len = n - first < Block ? n - first : Block;
            const float s = std::bit_cast<float>(wire::load_le<std::uint32_t>(scales + 4 * b));
            decode_block(bits + first / 8, len, s, out.data() + first);
        }
    }

    // The checks decode makes of a header read for n values (shared with dtfm/cuda/sign.cuh).
    static void check_header(const payload_header& h, std::size_t n) {
        payload_header::expect(h.param_a == mean_abs_scale, "scale", h.param_a);
        payload_header::expect(h.param_b == Block, "block", h.param_b);
        payload_header::expect(h.param_c == 0, "param_c", h.param_c);
        payload_header::expect_body(h, body_bytes(n));
    }

    // ---- the block math, for compressors and kernels that reuse it ----

    // mean |x| of n ≥ 1 values (0 for n = 0), summed in double over 16 lanes: a fixed order, so
    // the result is the same on every host, and a loop g++ vectorises without -ffast-math.
    DTFM_HOST_DEVICE static float block_scale(const float* x, std::size_t n) {
        constexpr std::size_t lanes = 16;
        double acc[lanes] = {};
        std::size_t i = 0;
        for (; i + lanes <= n; i += lanes) {
            for (std::size_t j = 0; j < lanes; ++j) acc[j] += static_cast<double>(magnitude(x[i + j]));
        }
        for (std::size_t j = 0; i + j < n; ++j) acc[j] += static_cast<double>(magnitude(x[i + j]));
        for (std::size_t width = lanes / 2; width > 0; width /= 2) {
            for (std::size_t j = 0; j < width; ++j) acc[j] += acc[j + width];
        }
        return n == 0 ? 0.0f : canonical_nan(static_cast<float>(acc[0] / static_cast<double>(n)));
    }

    // One block of n values: writes packed_bytes<1>(n) bytes of sign bits, returns the scale. Bits
    // are packed straight from the floats, 8 to a byte, with no buffer: any n works.
    DTFM_HOST_DEVICE static float encode_block(const float* x, std::size_t n, std::byte* packed) {
        const std::size_t groups = n / 8;
        for (std::size_t g = 0; g < groups; ++g) packed[g] = static_cast<std::byte>(sign_bits(x + 8 * g, 8));
        if (n % 8 != 0) packed[groups] = static_cast<std::byte>(sign_bits(x + 8 * groups, n % 8));
        return block_scale(x, n);
    }

    // A set bit flips the sign of s: −s for a set bit, s for a clear one.
    DTFM_HOST_DEVICE static void decode_block(const std::byte* packed, std::size_t n, float s, float* out) {
        const std::uint32_t sb = std::bit_cast<std::uint32_t>(s);
        const std::size_t groups = n / 8;
        for (std::size_t g = 0; g < groups; ++g) {
            signed_scales(static_cast<std::uint32_t>(packed[g]), sb, out + 8 * g, 8);
        }
        if (n % 8 != 0) signed_scales(static_cast<std::uint32_t>(packed[groups]), sb, out + 8 * groups, n % 8);
    }

    // ---- the same math split the way a device warp does it (dtfm/cuda/sign.cuh) ----

    static constexpr std::size_t scale_lanes = 16;

    // Lane l's share of block_scale's sum: |x[l]| + |x[l + 16]| + … in that order, in double.
    DTFM_HOST_DEVICE static double lane_sum(const float* x, std::size_t n, std::size_t l) {
        double acc = 0.0;
        for (std::size_t i = l; i < n; i += scale_lanes) acc += static_cast<double>(magnitude(x[i]));
        return acc;
    }

    // block_scale from the 16 lane sums (overwritten): the same pairwise order, so the same float.
    DTFM_HOST_DEVICE static float scale_of_lanes(double* acc, std::size_t n) {
        for (std::size_t width = scale_lanes / 2; width > 0; width /= 2) {
            for (std::size_t j = 0; j < width; ++j) acc[j] += acc[j + width];
        }
        return n == 0 ? 0.0f : canonical_nan(static_cast<float>(acc[0] / static_cast<double>(n)));
    }

    // Bit j of the result is the sign bit of x[j], j < count ≤ 8.
    DTFM_HOST_DEVICE static std::uint32_t sign_bits(const float* x, std::size_t count) {
        std::uint32_t v = 0;
        for (std::size_t j = 0; j < count; ++j) v |= (std::bit_cast<std::uint32_t>(x[j]) >> 31) << j;
        return v;
    }

    // out[j] = s with its sign flipped where bit j of v is set, j < count ≤ 8 (sb: s's bits).
    DTFM_HOST_DEVICE static void signed_scales(std::uint32_t v, std::uint32_t sb, float* out, std::size_t count) {
        for (std::size_t j = 0; j < count; ++j) out[j] = std::bit_cast<float>(sb ^ (((v >> j) & 1u) << 31));
    }

    DTFM_HOST_DEVICE static float magnitude(float v) {
        return std::bit_cast<float>(std::bit_cast<std::uint32_t>(v) & 0x7FFFFFFFu);
    }
};

static_assert(concepts::compressor<sign<>>);

}  // namespace dtfm::compress
