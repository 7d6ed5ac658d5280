// The body of every decoder fuzz target: hand the bytes to a decoder, with an output as long as
// the header asks (when that is plausible) so the fuzzer reaches past the length checks. The only
// acceptable failure is dtfm::wire_error; anything else (a crash, an overflow, another exception)
// is a bug the sanitizers or libFuzzer report.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dtfm/error.hpp"
#include "dtfm/wire/endian.hpp"

namespace dtfm::fuzz {

inline std::size_t output_size(std::span<const std::byte> payload) {
    if (payload.size() >= 24) {
        const auto count = wire::load_le<std::uint64_t>(payload.data() + 16);
        if (count <= (1u << 16)) return static_cast<std::size_t>(count);
    }
    return payload.size() % 97;
}

template <class Decoder>
void decode(Decoder& decoder, std::span<const std::byte> payload) {
    std::vector<float> out(output_size(payload));
    try {
        decoder.decode(payload, out);
    } catch (const wire_error&) {
    }
    // Sparse decoders also add at their kept positions only (error feedback's path): same checks.
    if constexpr (requires(std::span<float> o) { decoder.decode_scatter(payload, o, [](float&, float) {}); }) {
        try {
            decoder.decode_scatter(payload, std::span<float>(out), [](float& o, float v) { o += v; });
        } catch (const wire_error&) {
        }
    }
}

// A fresh decoder of type C for the bytes.
template <class C>
void decode_with(const std::uint8_t* data, std::size_t size) {
    C c;
    decode(c, std::as_bytes(std::span(data, size)));
}

// The first byte picks one of `n` decoder configurations; the rest is the payload.
inline std::size_t choose(const std::uint8_t*& data, std::size_t& size, std::size_t n) {
    if (size == 0) return 0;
    const std::size_t which = data[0] % n;
    ++data;
    --size;
    return which;
}

inline std::span<const std::byte> bytes(const std::uint8_t* data, std::size_t size) {
    return std::as_bytes(std::span(data, size));
}

}  // namespace dtfm::fuzz
