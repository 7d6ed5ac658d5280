// cast<fp16> and cast<bf16>: each value rounded to a 16-bit float (nearest even; Inf and NaN kept),
// half the bytes of fp32. fp16 keeps 11 bits of precision in [6e-8, 65504]; bf16 keeps fp32's
// range with 8 bits of precision.
#pragma once

#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#if defined(__F16C__) && !defined(__CUDACC__)
#include <immintrin.h>
#endif

#include "dtfm/compress/half.hpp"
#include "dtfm/compress/payload.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/spaces.hpp"

namespace dtfm::compress {

struct fp16 {
    static constexpr std::uint16_t id = 1;
    static constexpr const char* name = "fp16";
    DTFM_HOST_DEVICE static std::uint16_t from_float(float v) { return fp32_to_fp16(v); }
    DTFM_HOST_DEVICE static float to_float(std::uint16_t v) { return fp16_to_fp32(v); }
};

struct bf16 {
    static constexpr std::uint16_t id = 2;
    static constexpr const char* name = "bf16";
    DTFM_HOST_DEVICE static std::uint16_t from_float(float v) { return fp32_to_bf16(v); }
    DTFM_HOST_DEVICE static float to_float(std::uint16_t v) { return bf16_to_fp32(v); }
};

namespace detail {

// Elements before the first 64-byte boundary of p (at most n): the bulk loops run their first
// ones alone so that the main loop's vector loads (encode) or stores (decode) never straddle two
// cache lines. Measured on Zen 5 with AVX-512: bf16 encode of 1M values from a 16-byte aligned
// std::vector goes from 1.0 to 1.3 × memcpy, and at 16M from 0.65 to 1.2.
inline std::size_t to_cache_line(const void* p, std::size_t elements, std::size_t element_bytes) {
    const std::size_t misaligned = reinterpret_cast<std::uintptr_t>(p) % 64;
    const std::size_t head = misaligned == 0 || misaligned % element_bytes != 0 ? 0 : (64 - misaligned) / element_bytes;
    return head < elements ? head : elements;
}

// The portable loops: memcpy of each 16-bit value (the host is little-endian, as the payload),
// which every compiler vectorises. GCC 12 inlines these into callers whose buffer it can see is
// too small, misses that check_capacity threw, and warns: the warning is false.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
template <class Format>
void cast_encode_portable(const float* x, std::byte* body, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint16_t v = Format::from_float(x[i]);
        std::memcpy(body + 2 * i, &v, 2);
    }
}

template <class Format>
void cast_decode_portable(const std::byte* body, float* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t v;
        std::memcpy(&v, body + 2 * i, 2);
        out[i] = Format::to_float(v);
    }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// fp16 is the one format whose portable conversion is compute-bound (about 20 vector operations
// per 16 values, 0.6 × memcpy at 1M values): where the target has F16C, its conversion
// instructions do it in one. A compile-time choice, not a dispatch; the results are the same bit
// for bit (every fp32 pattern checked once; dtfm_bench_compress, built with -march=native, checks
// every fp16 pattern and each rounding case of every fp32 exponent before it measures; the unit
// tests check the portable loops).
#if defined(__F16C__) && !DTFM_DEVICE_COMPILER
// vcvtps2ph with an immediate rounding mode (nearest even, whatever MXCSR says); it keeps Inf,
// quiets NaN keeping the top of its payload, and makes fp16 subnormals, as fp32_to_fp16.
inline void fp16_encode_f16c(const float* x, std::byte* body, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(body + 2 * i), h);
    }
    cast_encode_portable<fp16>(x + i, body + 2 * i, n - i);
}

// vcvtph2ps is exact, but quiets a signalling NaN where fp16_to_fp32 keeps its bits: those
// lanes (exponent all ones, quiet bit clear, payload not zero) get the quiet bit cleared again.
inline void fp16_decode_f16c(const std::byte* body, float* out, std::size_t n) {
    const __m256i exponent_and_quiet = _mm256_set1_epi32(0x7E00);
    const __m256i signalling = _mm256_set1_epi32(0x7C00);
    const __m256i payload = _mm256_set1_epi32(0x01FF);
    const __m256i quiet_bit = _mm256_set1_epi32(0x00400000);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(body + 2 * i));
        const __m256i wide = _mm256_cvtepu16_epi32(h);
        const __m256i snan = _mm256_andnot_si256(
            _mm256_cmpeq_epi32(_mm256_and_si256(wide, payload), _mm256_setzero_si256()),
            _mm256_cmpeq_epi32(_mm256_and_si256(wide, exponent_and_quiet), signalling));
        const __m256i f = _mm256_castps_si256(_mm256_cvtph_ps(h));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_andnot_si256(_mm256_and_si256(snan, quiet_bit), f));
    }
    cast_decode_portable<fp16>(body + 2 * i, out + i, n - i);
}
#endif

}  // namespace detail

template <class Format>
class cast {
    static_assert(std::endian::native == std::endian::little, "dtfm payloads are little-endian");

public:
    using compressor_concept = compressor_tag;
    using value_type = float;
    using memory_space = host_space;

    std::size_t max_payload_bytes(std::size_t n) const { return payload_header::size + 2 * n; }

    std::size_t encode(std::span<const float> values, std::span<std::byte> payload) {
        const std::size_t n = values.size();
        const std::size_t bytes = max_payload_bytes(n);
        check_capacity(payload, bytes, "cast");
        payload_header{kind::cast, Format::id, 0, 0, n, 2 * n}.write(payload);
        std::byte* body = payload.data() + payload_header::size;
        const float* x = values.data();
        const std::size_t head = detail::to_cache_line(x, n, sizeof(float));
        detail::cast_encode_portable<Format>(x, body, head);
        encode_bulk(x + head, body + 2 * head, n - head);
        return bytes;
    }

    void decode(std::span<const std::byte> payload, std::span<float> out) {
        const auto h = payload_header::read(payload, kind::cast, out.size());
        payload_header::expect(h.param_a == Format::id, "format", h.param_a);
        payload_header::expect_body(h, 2 * out.size());
        const std::byte* body = payload.data() + payload_header::size;
        const std::size_t n = out.size();
        const std::size_t head = detail::to_cache_line(out.data(), n, sizeof(float));
        detail::cast_decode_portable<Format>(body, out.data(), head);
        decode_bulk(body + 2 * head, out.data() + head, n - head);
    }

private:
    static void encode_bulk(const float* x, std::byte* body, std::size_t n) {
#if defined(__F16C__) && !DTFM_DEVICE_COMPILER
        if constexpr (std::same_as<Format, fp16>) {
            detail::fp16_encode_f16c(x, body, n);
            return;
        }
#endif
        detail::cast_encode_portable<Format>(x, body, n);
    }

    static void decode_bulk(const std::byte* body, float* out, std::size_t n) {
#if defined(__F16C__) && !DTFM_DEVICE_COMPILER
        if constexpr (std::same_as<Format, fp16>) {
            detail::fp16_decode_f16c(body, out, n);
            return;
        }
#endif
        detail::cast_decode_portable<Format>(body, out, n);
    }
};

static_assert(concepts::compressor<cast<fp16>>);
static_assert(concepts::compressor<cast<bf16>>);

}  // namespace dtfm::compress
