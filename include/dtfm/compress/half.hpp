// fp16 (IEEE binary16) and bf16 conversions of fp32, rounding to nearest even, keeping Inf and
// NaN (a NaN stays a NaN, made quiet). Branch-free integer arithmetic in DTFM_HOST_DEVICE
// functions: the same code vectorises on any host and runs in CUDA kernels.
#pragma once

#include <bit>
#include <cstdint>

#include "dtfm/config.hpp"

namespace dtfm::compress {

DTFM_HOST_DEVICE std::uint16_t fp32_to_fp16(float value) {
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
    const std::uint32_t sign = (bits >> 16) & 0x8000u;
    const std::uint32_t magnitude = bits & 0x7FFFFFFFu;

    // Normal range: re-bias the exponent and round the 13 dropped mantissa bits to nearest even.
    const std::uint32_t odd = (magnitude >> 13) & 1u;
    const std::uint32_t normal = (magnitude - ((127u - 15u) << 23) + 0xFFFu + odd) >> 13;
    // Below 2^-14 the result is subnormal: adding 0.5 aligns the 10 kept bits at the bottom of the
    // mantissa, and the float addition itself rounds to nearest even.
    const float aligned = std::bit_cast<float>(magnitude) + 0.5f;
    const std::uint32_t subnormal = std::bit_cast<std::uint32_t>(aligned) - 0x3F000000u;
    // 65520 and above round to infinity; NaN keeps the top of its payload and becomes quiet.
    const std::uint32_t special = magnitude > 0x7F800000u ? (0x7E00u | ((magnitude >> 13) & 0x3FFu)) : 0x7C00u;

    const std::uint32_t result = magnitude >= 0x477FF000u ? special : magnitude < 0x38800000u ? subnormal : normal;
    return static_cast<std::uint16_t>(sign | result);
}

DTFM_HOST_DEVICE float fp16_to_fp32(std::uint16_t half) {
    // Exponent and mantissa moved to fp32's positions, the exponent re-biased by 127 - 15.
    const std::uint32_t shifted = static_cast<std::uint32_t>(half & 0x7FFFu) << 13;
    const std::uint32_t exponent = shifted & 0x0F800000u;
    const std::uint32_t normal = shifted + ((127u - 15u) << 23);
    // Inf and NaN: the exponent goes all the way to 255, the mantissa (NaN payload) stays.
    const std::uint32_t special = normal + ((128u - 16u) << 23);
    // Zero and subnormals: give them the implicit bit of 2^-14, then subtract 2^-14 in fp32,
    // which renormalises exactly.
    const float renormalised = std::bit_cast<float>(normal + (1u << 23)) - 0x1p-14f;
    const std::uint32_t subnormal = std::bit_cast<std::uint32_t>(renormalised);
    const std::uint32_t magnitude = exponent == 0x0F800000u ? special : exponent == 0 ? subnormal : normal;
    return std::bit_cast<float>((static_cast<std::uint32_t>(half & 0x8000u) << 16) | magnitude);
}

DTFM_HOST_DEVICE std::uint16_t fp32_to_bf16(float value) {
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
    const std::uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    const bool nan = (bits & 0x7FFFFFFFu) > 0x7F800000u;
    return static_cast<std::uint16_t>(nan ? ((bits >> 16) | 0x40u) : rounded);
}

DTFM_HOST_DEVICE float bf16_to_fp32(std::uint16_t value) {
    return std::bit_cast<float>(static_cast<std::uint32_t>(value) << 16);
}

}  // namespace dtfm::compress
