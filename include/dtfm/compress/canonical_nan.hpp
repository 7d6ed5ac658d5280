// canonical_nan(v): every NaN as 0x7FFFFFFF, the one NaN a GPU's float arithmetic produces (x86
// keeps an operand's NaN bits, or makes 0xFFC00000 from Inf − Inf and the like). The shared
// compressor math passes each computed float through it, so payloads, decoded values and
// error-feedback state stay bit for bit the same on the host and on a device, NaN included.
#pragma once

#include <bit>
#include <cstdint>

#include "dtfm/config.hpp"

namespace dtfm::compress {

inline constexpr std::uint32_t canonical_nan_bits = 0x7FFFFFFFu;

// A select on bit patterns (no float compare), so the loops calling it still vectorise.
DTFM_HOST_DEVICE float canonical_nan(float v) {
    const std::uint32_t b = std::bit_cast<std::uint32_t>(v);
    const std::uint32_t nan = (b & 0x7FFFFFFFu) > 0x7F800000u ? 0xFFFFFFFFu : 0u;
    return std::bit_cast<float>((canonical_nan_bits & nan) | (b & ~nan));
}

}  // namespace dtfm::compress
