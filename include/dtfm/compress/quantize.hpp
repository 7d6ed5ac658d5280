// quantize<Bits, Scale, Rounding, Block>: each block of Block values mapped to 2^Bits levels spread
// uniformly over the block's range [lo, hi] and bit-packed (the quantizer of AC-SGD and CocktailSGD
// with absmax, of BAGUA's ByteGrad with minmax):
//     step = (hi − lo) / (2^Bits − 1),   code = round((x − lo) / step),   x̂ = lo + code·step,
// the top code decoding to hi exactly. Rounding to nearest errs by at most step/2; stochastic
// rounding, code = ⌊t + u⌋ with u uniform in [0, 1), errs by less than step and is unbiased,
// E[x̂] = x, which the AC-SGD and CocktailSGD convergence proofs assume.
#pragma once

#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include "dtfm/compress/canonical_nan.hpp"
#include "dtfm/compress/bitpack.hpp"
#include "dtfm/compress/payload.hpp"
#include "dtfm/compress/random.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/config.hpp"
#include "dtfm/spaces.hpp"
#include "dtfm/wire/endian.hpp"

namespace dtfm::compress {

namespace detail {

// A float product and sum rounded on their own: never contracted into an FMA, so device kernels
// (nvcc contracts by default) give the host's codes and values bit for bit. On the host they are
// the plain operators, and the compiler treats them as it always did.
DTFM_HOST_DEVICE float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}

DTFM_HOST_DEVICE float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}

}  // namespace detail

// The grid of one block: code c decodes to lo + c·step, the top code to top_value = hi + 0·step
// (hi exactly, or NaN where step is not finite, so a non-finite range spreads to every code).
// inv_step is about 1/step, or 0 when hi = lo (a constant block: every value gets code 0 and
// decodes to lo exactly).
struct quant_grid {
    float lo;
    float hi;
    float step;
    float inv_step;
    float top_value;
};

template <int Bits>
    requires packable_bits<Bits>
DTFM_HOST_DEVICE quant_grid make_quant_grid(float lo, float hi) {
    constexpr auto top = static_cast<float>((1u << Bits) - 1u);
    const float range = hi - lo;
    const float step = range / top;
    // Not 1/step: two independent divisions, not a chain of two, per block.
    const float inv = range > 0.0f ? top / range : 0.0f;
    // inv rounded down can put hi a hair below the top code, where stochastic rounding could
    // still round it down: nudge inv up, by at most 4 ulp, until hi maps to the top (about 1 block
    // in 10 needs 1 ulp). range·inv grows with inv, so the ulps needed are the count of the 4
    // candidates falling short: counted without a branch, which mispredicted at that 1 in 10.
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(inv);
    std::uint32_t nudge = 0;
    for (std::uint32_t k = 0; k < 4; ++k) {
        nudge += static_cast<std::uint32_t>(range > 0.0f && range * std::bit_cast<float>(bits + k) < top);
    }
    return {lo, hi, step, std::bit_cast<float>(bits + nudge), hi + 0.0f * step};
}

// Scale policies: which range a block is spread over, and the fp32 fields that carry it.
//
// absmax: [−m, m] with m = max |x|, one field m. Symmetric, so 0 is never more than step/2 away,
// but half the levels are wasted on a one-signed block.
struct absmax {
    static constexpr std::uint16_t id = 0;
    static constexpr std::size_t fields = 1;
    static constexpr const char* name = "absmax";

    // max |x| as the largest magnitude bit pattern: an integer max, which vectorises without
    // -ffast-math, and a NaN (whose pattern lies above Inf's) wins. Signed, as the patterns fit
    // 31 bits: SSE2 has no unsigned compare.
    DTFM_HOST_DEVICE static void measure(const float* x, std::size_t n, float* f) {
        std::int32_t m = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const std::int32_t a = std::bit_cast<std::int32_t>(x[i]) & 0x7FFFFFFF;
            m = a > m ? a : m;
        }
        f[0] = std::bit_cast<float>(m);
    }

    // Merges the fields g of another part of the block into f: measure over a block equals
    // measure over its parts, combined in any order (a device reduces a block's parts this way).
    DTFM_HOST_DEVICE static void combine(float* f, const float* g) {
        const std::int32_t a = std::bit_cast<std::int32_t>(f[0]);
        const std::int32_t b = std::bit_cast<std::int32_t>(g[0]);
        f[0] = std::bit_cast<float>(a > b ? a : b);
    }

    // 0 − m rather than −m: an all-zero block decodes to +0, not −0.
    template <int Bits>
    DTFM_HOST_DEVICE static quant_grid grid(const float* f) {
        return make_quant_grid<Bits>(0.0f - f[0], f[0]);
    }
};

// minmax: [min x, max x], two fields lo and hi. Every level lies inside the data.
struct minmax {
    static constexpr std::uint16_t id = 1;
    static constexpr std::size_t fields = 2;
    static constexpr const char* name = "minmax";

    // Reduced on integers that order like the floats they encode (the sign-magnitude pattern
    // turned two's complement): vectorises without -ffast-math; a NaN is an end of the range.
    DTFM_HOST_DEVICE static void measure(const float* x, std::size_t n, float* f) {
        if (n == 0) {
            f[0] = f[1] = 0.0f;
            return;
        }
        std::int32_t lo = ordered(x[0]);
        std::int32_t hi = lo;
        for (std::size_t i = 1; i < n; ++i) {
            const std::int32_t k = ordered(x[i]);
            lo = k < lo ? k : lo;
            hi = k > hi ? k : hi;
        }
        f[0] = std::bit_cast<float>(ordered_bits(lo));
        f[1] = std::bit_cast<float>(ordered_bits(hi));
    }

    // As absmax::combine; the parts must not be empty (an empty part measures as [0, 0]).
    DTFM_HOST_DEVICE static void combine(float* f, const float* g) {
        const std::int32_t lo = ordered(f[0]);
        const std::int32_t hi = ordered(f[1]);
        const std::int32_t glo = ordered(g[0]);
        const std::int32_t ghi = ordered(g[1]);
        f[0] = std::bit_cast<float>(ordered_bits(glo < lo ? glo : lo));
        f[1] = std::bit_cast<float>(ordered_bits(ghi > hi ? ghi : hi));
    }

    template <int Bits>
    DTFM_HOST_DEVICE static quant_grid grid(const float* f) {
        return make_quant_grid<Bits>(f[0], f[1]);
    }

private:
    DTFM_HOST_DEVICE static std::int32_t ordered(float v) {
        const auto s = std::bit_cast<std::int32_t>(v);
        return s ^ ((s >> 31) & 0x7FFFFFFF);
    }
    // The map is its own inverse.
    DTFM_HOST_DEVICE static std::uint32_t ordered_bits(std::int32_t k) {
        return std::bit_cast<std::uint32_t>(k ^ ((k >> 31) & 0x7FFFFFFF));
    }
};

// Rounding policies, applied to t = (x − lo) / step and capped at 2^Bits − 1. nearest rounds half
// to even: t + 1.5·2^23 lands on the float grid of integers, so the addition itself rounds (no
// libm call, no -fno-math-errno needed to vectorise). stochastic takes ⌊t + u⌋, u a counter-based
// uniform of (seed, encode call, element index) on a 2^-24 grid: deterministic for a seed and a
// sequence of encodes, and unbiased up to the float rounding of t and t + u, which moves E[code]
// by less than 2^-14 (of a step) for any Bits.
struct nearest {
    static constexpr std::uint16_t id = 0;
    static constexpr const char* name = "nearest";
};

struct stochastic {
    static constexpr std::uint16_t id = 1;
    static constexpr const char* name = "stochastic";
};

namespace detail {

// A 32-bit integer hash with full avalanche: two xor-shift-multiply rounds (the constants of
// Wellons' "lowbias32"). 32-bit products vectorise on any SIMD unit and are cheap on a GPU.
DTFM_HOST_DEVICE std::uint32_t mix32(std::uint32_t x) {
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    return x;
}

// The uniform in [0, 1), a multiple of 2^-24, that stochastic rounding draws for element j of a
// block whose stream is `key`.
DTFM_HOST_DEVICE float rounding_uniform(std::uint32_t key, std::uint32_t j) {
    const auto top24 = static_cast<std::int32_t>(mix32(key ^ (j * 0x9E3779B9u)) >> 8);
    return static_cast<float>(top24) * 0x1p-24f;
}

// Whether SIMD lanes can shift by different amounts (AVX2 and later, NEON, GPUs). x86 before
// AVX2 cannot, and g++ then turns a per-lane shift into scalar code: decode_block picks another
// form there. A compile-time choice of the target, not a runtime dispatch.
#if (defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)) && !defined(__AVX2__)
inline constexpr bool per_lane_shifts = false;
#else
inline constexpr bool per_lane_shifts = true;
#endif

}  // namespace detail

// Payload (after the 32-byte header: kind::quantize, param_a = Bits | Scale::id << 4 |
// Rounding::id << 6, param_b = Block, param_c = 0, count = n): for each of the ⌈n / Block⌉ blocks
// its Scale::fields scale fields as little-endian fp32 (absmax: m; minmax: lo, hi), then the n
// codes packed as bitpack.hpp describes. A block's codes start on a byte boundary (Block is a
// multiple of 8); the last block may be shorter.
//
// Non-finite inputs: a block holding Inf or NaN (of either sign) gets a non-finite scale field
// (absmax: m = Inf or NaN; minmax: lo or hi) and decodes to NaN throughout; other blocks are
// unaffected. So does a finite block whose range hi − lo overflows fp32 (values beyond ±1.7e38).
// Blocks whose range is below about 1e-36 (a subnormal step) lose resolution; their error stays
// below the range. The loops have no data-dependent branch and no float-to-integer conversion
// (codes come from bit patterns), so no input is undefined behaviour; any bytes decode.
//
// Determinism: for a seed, a sequence of encodes gives the same bytes in one build. Across builds,
// g++ may fuse (x − lo)·inv with the rounding addition, and lo + code·step in decode, into FMAs
// (it does under -march with FMA, even in ISO mode): codes can differ at exact ties and decoded
// values by an ulp. Peers that must agree bit for bit (AC-SGD's m(ξ) on both sides) build the
// same way, or with -ffp-contract=off.
template <int Bits, class Scale = absmax, class Rounding = nearest, std::size_t Block = 256>
class quantize {
    static_assert(packable_bits<Bits>, "quantize: Bits must be 1, 2, 3, 4 or 8");
    static_assert(Block >= 8 && Block <= 65536 && Block % 8 == 0,
                  "quantize: Block must be a multiple of 8 in [8, 65536]");

public:
    using compressor_concept = compressor_tag;
    using value_type = float;
    using memory_space = host_space;
    using scale_type = Scale;
    using rounding_type = Rounding;

    static constexpr int bits = Bits;
    static constexpr std::size_t block = Block;
    static constexpr std::uint32_t top_code = (1u << Bits) - 1u;
    static constexpr std::size_t scale_fields = Scale::fields;
    static constexpr std::size_t block_scale_bytes = 4 * Scale::fields;
    static constexpr std::uint16_t param_a = static_cast<std::uint16_t>(Bits | Scale::id << 4 | Rounding::id << 6);

    // The seed picks stochastic rounding's random numbers (nearest ignores it).
    explicit quantize(std::uint64_t seed = 0) : seed_(seed) {}

    std::uint64_t seed() const { return seed_; }
    // Encodes so far: the call counter of the random stream, advanced once per encode.
    std::uint64_t calls() const { return calls_; }

    static constexpr std::size_t blocks(std::size_t n) { return n / Block + (n % Block != 0 ? 1 : 0); }
    static constexpr std::size_t body_bytes(std::size_t n) {
        return blocks(n) * block_scale_bytes + packed_bytes<Bits>(n);
    }
    std::size_t max_payload_bytes(std::size_t n) const { return payload_header::size + body_bytes(n); }

    std::size_t encode(std::span<const float> values, std::span<std::byte> payload) {
        const std::size_t n = values.size();
        const std::size_t bytes = max_payload_bytes(n);
        check_capacity(payload, bytes, "quantize");
        payload_header{kind::quantize, param_a, static_cast<std::uint32_t>(Block), 0, n, body_bytes(n)}.write(payload);
        std::byte* scales = payload.data() + payload_header::size;
        std::byte* codes = scales + blocks(n) * block_scale_bytes;
        const std::uint64_t call = calls_++;
        // Full blocks, then the last, shorter one: the full blocks' loops have a trip count known
        // at compile time (no remainder handling per block). Software-pipelined by one block:
        // block b + 1's range and grid (two divisions) are computed before block b's codes, so
        // their latency overlaps the codes loop.
        const float* x = values.data();
        const std::size_t full = n / Block;
        float fields[Scale::fields] = {};
        float next[Scale::fields] = {};
        quant_grid g{};
        if (full > 0) {
            Scale::measure(x, Block, fields);
            g = Scale::template grid<Bits>(fields);
        }
        for (std::size_t b = 0; b < full; ++b) {
            store_fields(scales + block_scale_bytes * b, fields);
            quant_grid g_next = g;
            if (b + 1 < full) {
                Scale::measure(x + (b + 1) * Block, Block, next);
                g_next = Scale::template grid<Bits>(next);
            }
            encode_codes(x + b * Block, Block, g, block_key(seed_, call, b), codes + b * (Block / 8 * Bits));
            for (std::size_t k = 0; k < Scale::fields; ++k) fields[k] = next[k];
            g = g_next;
        }
        if (const std::size_t rest = n - full * Block; rest != 0) {
            encode_block(x + full * Block, rest, block_key(seed_, call, full), fields, codes + full * (Block / 8 * Bits));
            store_fields(scales + block_scale_bytes * full, fields);
        }
        return bytes;
    }

    // Any scale fields and codes decode (to possibly non-finite values); only the header and the
    // length can be malformed.
    void decode(std::span<const std::byte> payload, std::span<float> out) {
        const std::size_t n = out.size();
        check_header(payload_header::read(payload, kind::quantize, n), n);
        const std::byte* scales = payload.data() + payload_header::size;
        const std::byte* codes = scales + blocks(n) * block_scale_bytes;
        // As in encode, full blocks apart from the last, shorter one.
        const std::size_t full = n / Block;
        for (std::size_t b = 0; b < full; ++b) {
            float fields[Scale::fields];
            load_fields(scales + block_scale_bytes * b, fields);
            decode_block(codes + b * (Block / 8 * Bits), Block, fields, out.data() + b * Block);
        }
        if (const std::size_t rest = n - full * Block; rest != 0) {
            float fields[Scale::fields];
            load_fields(scales + block_scale_bytes * full, fields);
            decode_block(codes + full * (Block / 8 * Bits), rest, fields, out.data() + full * Block);
        }
    }

    // The checks decode makes of a header read for n values (shared with dtfm/cuda/quantize.cuh).
    static void check_header(const payload_header& h, std::size_t n) {
        payload_header::expect((h.param_a & 0xFu) == Bits, "bits", h.param_a & 0xFu);
        payload_header::expect(((h.param_a >> 4) & 0x3u) == Scale::id, "scale", (h.param_a >> 4) & 0x3u);
        payload_header::expect(((h.param_a >> 6) & 0x3u) == Rounding::id, "rounding", (h.param_a >> 6) & 0x3u);
        payload_header::expect(h.param_a == param_a, "param_a", h.param_a);
        payload_header::expect(h.param_b == Block, "block", h.param_b);
        payload_header::expect(h.param_c == 0, "param_c", h.param_c);
        payload_header::expect_body(h, body_bytes(n));
    }

    // ---- the block math, for compressors that quantize part of their payload and for kernels ----

    // The random stream of block b in the call-th encode of a compressor seeded with seed.
    DTFM_HOST_DEVICE static std::uint32_t block_key(std::uint64_t seed, std::uint64_t call, std::uint64_t b) {
        if constexpr (std::same_as<Rounding, stochastic>) {
            return static_cast<std::uint32_t>(stream_key(seed, call, b) >> 32);
        } else {
            return 0;
        }
    }

    // The code of value x, element i of its block, on grid g (lo and inv_step passed apart so the
    // loops keep them in registers). Rounding uses t + 1.5·2^23, whose bit pattern minus that of
    // 1.5·2^23 is round-half-even(t) for t in [−0.5, 2^22); the result is then capped at top with
    // an unsigned min. No float-to-integer conversion (undefined for NaN and out-of-range values)
    // and no float select (at which g++ splits the loop, and then will not vectorise it): any t
    // gives a code, NaN and ±Inf give top. x must not lie below lo (t ≥ 0), as in its own block.
    DTFM_HOST_DEVICE static std::uint32_t code_of(float x, float lo, float inv, std::uint32_t key, std::uint32_t i) {
        constexpr float magic = 0x1.8p23f;
        constexpr std::uint32_t magic_bits = 0x4B400000u;
        float t = detail::mul_rn(x - lo, inv);
        std::uint32_t k = 0;
        if constexpr (std::same_as<Rounding, stochastic>) {
            // ⌊t + u⌋: rounded to nearest, then one down where that rounded up.
            t = detail::add_rn(t, detail::rounding_uniform(key, i));
            const float r = t + magic;
            k = std::bit_cast<std::uint32_t>(r) - magic_bits;
            k -= static_cast<std::uint32_t>(r - magic > t);
        } else {
            (void)key;
            (void)i;
            k = std::bit_cast<std::uint32_t>(t + magic) - magic_bits;
        }
        return k < top_code ? k : top_code;
    }

    // The value of code c (≤ top) on grid g (lo, step and top_value's bit pattern passed apart).
    // The select is on bit patterns: g++ will not if-convert a float select whose other arm may
    // trap, and the loops would not vectorise.
    DTFM_HOST_DEVICE static float value_of(std::uint32_t c, float lo, float step, std::uint32_t top_value) {
        const float v = detail::add_rn(lo, detail::mul_rn(static_cast<float>(c), step));
        const std::uint32_t top = c == top_code ? 0xFFFFFFFFu : 0u;
        return canonical_nan(std::bit_cast<float>((top_value & top) | (std::bit_cast<std::uint32_t>(v) & ~top)));
    }

    // The codes of n ≤ Block values on grid g, one byte each; element i of the block draws its
    // uniform from (key, i). The index is 32-bit, so its hash vectorises without 64-bit lanes.
    DTFM_HOST_DEVICE static void block_codes(const float* x, std::size_t n, const quant_grid& g, std::uint32_t key,
                                             std::uint8_t* codes) {
        const float lo = g.lo;
        const float inv = g.inv_step;
        const auto count = static_cast<std::uint32_t>(n);
        for (std::uint32_t i = 0; i < count; ++i) codes[i] = static_cast<std::uint8_t>(code_of(x[i], lo, inv, key, i));
    }

    // The values of n codes on grid g.
    DTFM_HOST_DEVICE static void block_values(const std::uint8_t* codes, std::size_t n, const quant_grid& g,
                                              float* out) {
        const float lo = g.lo;
        const float step = g.step;
        const std::uint32_t top_value = std::bit_cast<std::uint32_t>(g.top_value);
        for (std::size_t i = 0; i < n; ++i) out[i] = value_of(codes[i], lo, step, top_value);
    }

    // One block of n ≤ Block values (a larger n is cut to Block): its scale fields, and its
    // packed_bytes<Bits>(n) bytes of codes.
    DTFM_HOST_DEVICE static void encode_block(const float* x, std::size_t n, std::uint32_t key, float* fields,
                                              std::byte* packed) {
        n = n < Block ? n : Block;
        Scale::measure(x, n, fields);
        encode_codes(x, n, Scale::template grid<Bits>(fields), key, packed);
    }

    // The packed codes of n ≤ Block values on a grid already known (a larger n is cut to Block).
    // 2 and 4 bits pack each byte as its codes are computed; 1 and 3 bits are faster as codes,
    // then pack (measured with g++ 12, AVX-512 and SSE2).
    DTFM_HOST_DEVICE static void encode_codes(const float* x, std::size_t n, const quant_grid& g, std::uint32_t key,
                                              std::byte* packed) {
        n = n < Block ? n : Block;
        if constexpr (Bits == 8) {
            block_codes(x, n, g, key, reinterpret_cast<std::uint8_t*>(packed));
        } else if constexpr (Bits == 2 || Bits == 4) {
            constexpr std::uint32_t per_byte = 8 / Bits;
            const float lo = g.lo;
            const float inv = g.inv_step;
            const auto count = static_cast<std::uint32_t>(n);
            const std::uint32_t full = count / per_byte;
            // Codes one byte each, then the 8 / Bits of each byte combined: both loops vectorise
            // with contiguous loads, where computing each byte's codes in place took strided ones.
            // 2 bits: u·0x01041040 moves byte j of u to bits 24 + 2j, no carry reaching bit 24.
            std::uint8_t codes[Block];
            for (std::uint32_t i = 0; i < per_byte * full; ++i) {
                codes[i] = static_cast<std::uint8_t>(code_of(x[i], lo, inv, key, i));
            }
            for (std::uint32_t t = 0; t < full; ++t) {
                const std::uint8_t* c = codes + per_byte * t;
                if constexpr (Bits == 2) {
                    const std::uint32_t u = std::uint32_t{c[0]} | std::uint32_t{c[1]} << 8 | std::uint32_t{c[2]} << 16 | std::uint32_t{c[3]} << 24;
                    packed[t] = static_cast<std::byte>((u * 0x01041040u) >> 24);
                } else {
                    packed[t] = static_cast<std::byte>(c[0] | c[1] << 4);
                }
            }
            if (count % per_byte != 0) {
                std::uint32_t v = 0;
                for (std::uint32_t i = per_byte * full; i < count; ++i) {
                    v |= code_of(x[i], lo, inv, key, i) << (Bits * (i - per_byte * full));
                }
                packed[full] = static_cast<std::byte>(v);
            }
        } else {
            std::uint8_t codes[Block];
            block_codes(x, n, g, key, codes);
            pack_bits<Bits>(std::span<const std::uint8_t>(codes, n), packed);
        }
    }

    // ---- one group of 8 codes: the unit of work of a device thread (dtfm/cuda/quantize.cuh) ----

    // Codes 8j … 8j + 7 of a block of n values (fewer in a last, partial group) on grid g, packed
    // into their packed_bytes<Bits> bytes at packed + j·Bits: the bytes encode_codes writes there.
    DTFM_HOST_DEVICE static void encode_group(const float* block, std::size_t n, const quant_grid& g,
                                              std::uint32_t key, std::size_t j, std::byte* packed) {
        const std::size_t first = 8 * j;
        const std::size_t count = n - first < 8 ? n - first : 8;
        std::uint8_t codes[8];
        for (std::size_t c = 0; c < 8; ++c) {
            codes[c] = c < count ? static_cast<std::uint8_t>(code_of(block[first + c], g.lo, g.inv_step, key,
                                                                     static_cast<std::uint32_t>(first + c)))
                                 : std::uint8_t{0};
        }
        if (count == 8) {
            pack_group<Bits>(codes, packed + Bits * j);
        } else {
            std::byte bytes[Bits] = {};
            pack_group<Bits>(codes, bytes);
            for (std::size_t t = 0; t < packed_bytes<Bits>(count); ++t) packed[Bits * j + t] = bytes[t];
        }
    }

    // The values of codes 8j … 8j + 7 of a block of n (fewer in a last group) into block_out;
    // reads only the group's packed_bytes<Bits> bytes. The values decode_block writes there.
    DTFM_HOST_DEVICE static void decode_group(const std::byte* packed, std::size_t n, const quant_grid& g,
                                              std::size_t j, float* block_out) {
        const std::size_t first = 8 * j;
        const std::size_t count = n - first < 8 ? n - first : 8;
        std::byte bytes[Bits] = {};
        for (std::size_t t = 0; t < packed_bytes<Bits>(count); ++t) bytes[t] = packed[Bits * j + t];
        std::uint8_t codes[8];
        unpack_group<Bits>(bytes, codes);
        const std::uint32_t top_value = std::bit_cast<std::uint32_t>(g.top_value);
        for (std::size_t c = 0; c < count; ++c) block_out[first + c] = value_of(codes[c], g.lo, g.step, top_value);
    }

    // The values of a block of n ≤ Block packed codes (a larger n is cut to Block), in the form
    // g++ 12 vectorises best for each width (measured on AVX-512, AVX2 and SSE2): 1 and 2 bits
    // take a little-endian word of 32 codes at a time into floats (a broadcast and per-lane
    // shifts) where lanes shift by different amounts, else a byte at a time, as 4 bits always do;
    // 3 bits unpack first.
    DTFM_HOST_DEVICE static void decode_block(const std::byte* packed, std::size_t n, const float* fields, float* out) {
        n = n < Block ? n : Block;
        const quant_grid g = Scale::template grid<Bits>(fields);
        const float lo = g.lo;
        const float step = g.step;
        const std::uint32_t top_value = std::bit_cast<std::uint32_t>(g.top_value);
        if constexpr (Bits == 8) {
            block_values(reinterpret_cast<const std::uint8_t*>(packed), n, g, out);
        } else if constexpr (Bits == 3) {
            std::uint8_t codes[Block];
            unpack_bits<Bits>(packed, std::span<std::uint8_t>(codes, n));
            block_values(codes, n, g, out);
        } else if constexpr (Bits == 4 || !detail::per_lane_shifts) {
            // A local copy of the bytes, which out cannot alias: without it g++ vectorises the
            // loop well or badly depending on where it is inlined.
            constexpr std::size_t per_byte = 8 / Bits;
            const std::size_t full = n / per_byte;
            std::uint8_t bytes[Block / per_byte];
            for (std::size_t t = 0; t < full; ++t) bytes[t] = static_cast<std::uint8_t>(packed[t]);
            for (std::size_t t = 0; t < full; ++t) {
                const std::uint32_t v = bytes[t];
                for (std::size_t j = 0; j < per_byte; ++j) {
                    out[per_byte * t + j] = value_of((v >> (Bits * j)) & top_code, lo, step, top_value);
                }
            }
            if (n % per_byte != 0) {
                const auto v = static_cast<std::uint32_t>(packed[full]);
                for (std::size_t i = per_byte * full; i < n; ++i) {
                    out[i] = value_of((v >> (Bits * (i - per_byte * full))) & top_code, lo, step, top_value);
                }
            }
        } else {
            using word = std::conditional_t<Bits == 2, std::uint64_t, std::uint32_t>;
            constexpr std::size_t per_word = 8 * sizeof(word) / Bits;
            const std::size_t words = n / per_word;
            for (std::size_t k = 0; k < words; ++k) {
                const word w = detail::load_le_word<word>(packed + sizeof(word) * k);
                for (std::size_t j = 0; j < per_word; ++j) {
                    const auto c = static_cast<std::uint32_t>((w >> (Bits * j)) & top_code);
                    out[per_word * k + j] = value_of(c, lo, step, top_value);
                }
            }
            if (const std::size_t rest = n - per_word * words; rest != 0) {
                std::uint8_t codes[per_word];
                unpack_bits<Bits>(packed + sizeof(word) * words, std::span<std::uint8_t>(codes, rest));
                block_values(codes, rest, g, out + per_word * words);
            }
        }
    }

private:
    static void store_fields(std::byte* to, const float* fields) {
        for (std::size_t k = 0; k < Scale::fields; ++k) {
            wire::store_le<std::uint32_t>(to + 4 * k, std::bit_cast<std::uint32_t>(fields[k]));
        }
    }

    static void load_fields(const std::byte* from, float* fields) {
        for (std::size_t k = 0; k < Scale::fields; ++k) {
            fields[k] = std::bit_cast<float>(wire::load_le<std::uint32_t>(from + 4 * k));
        }
    }

    std::uint64_t seed_;
    std::uint64_t calls_ = 0;
};

static_assert(concepts::compressor<quantize<4>>);
static_assert(concepts::compressor<quantize<3, minmax, stochastic, 128>>);

}  // namespace dtfm::compress
