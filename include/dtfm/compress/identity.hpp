// identity: the uncompressed baseline — the values as little-endian fp32 behind a payload header.
#pragma once

#include <bit>
#include <cstddef>
#include <cstring>
#include <span>

#include "dtfm/compress/payload.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/spaces.hpp"

namespace dtfm::compress {

class identity {
    static_assert(std::endian::native == std::endian::little, "dtfm payloads are little-endian");

public:
    using compressor_concept = compressor_tag;
    using value_type = float;
    using memory_space = host_space;

    std::size_t max_payload_bytes(std::size_t n) const { return payload_header::size + n * sizeof(float); }

    std::size_t encode(std::span<const float> values, std::span<std::byte> payload) {
        const std::size_t bytes = max_payload_bytes(values.size());
        check_capacity(payload, bytes, "identity");
        payload_header{kind::identity, 0, 0, 0, values.size(), values.size() * sizeof(float)}.write(payload);
        if (!values.empty()) std::memcpy(payload.data() + payload_header::size, values.data(), values.size_bytes());
        return bytes;
    }

    void decode(std::span<const std::byte> payload, std::span<float> out) {
        const auto h = payload_header::read(payload, kind::identity, out.size());
        payload_header::expect_body(h, out.size() * sizeof(float));
        if (!out.empty()) std::memcpy(out.data(), payload.data() + payload_header::size, out.size_bytes());
    }
};

static_assert(concepts::compressor<identity>);

}  // namespace dtfm::compress
