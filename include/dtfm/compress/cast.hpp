// cast<fp16> and cast<bf16>: each value rounded to a 16-bit float (nearest even; Inf and NaN kept),
// half the bytes of fp32. fp16 keeps 11 bits of precision in [6e-8, 65504]; bf16 keeps fp32's
// range with 8 bits of precision.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

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
        // memcpy of each 16-bit value (the host is little-endian, as the payload): vectorises.
        // GCC 12 inlines this into callers whose buffer it can see is too small, misses that
        // check_capacity threw, and warns: the warning is false.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint16_t v = Format::from_float(values[i]);
            std::memcpy(body + 2 * i, &v, 2);
        }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
        return bytes;
    }

    void decode(std::span<const std::byte> payload, std::span<float> out) {
        const auto h = payload_header::read(payload, kind::cast, out.size());
        payload_header::expect(h.param_a == Format::id, "format", h.param_a);
        payload_header::expect_body(h, 2 * out.size());
        const std::byte* body = payload.data() + payload_header::size;
        for (std::size_t i = 0; i < out.size(); ++i) {
            std::uint16_t v;
            std::memcpy(&v, body + 2 * i, 2);
            out[i] = Format::to_float(v);
        }
    }
};

static_assert(concepts::compressor<cast<fp16>>);
static_assert(concepts::compressor<cast<bf16>>);

}  // namespace dtfm::compress
