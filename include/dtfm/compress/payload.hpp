// The header every compressed payload starts with, and its validation. Layout (little-endian,
// 32 bytes): magic "DTFC", version, compressor kind, three parameter fields, the element count of
// the decoded tensor, and the byte length of the body that follows. A decoder checks every field
// against its own type and the caller's buffer before it reads a byte of the body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "dtfm/error.hpp"
#include "dtfm/wire/endian.hpp"

namespace dtfm::compress {

// One id per compressor family; a payload of one family is never decoded by another.
enum class kind : std::uint8_t {
    identity = 1,
    cast = 2,
    quantize = 3,
    sign = 4,
    topk = 5,
    randomk = 6,
    cocktail = 7,
    delta = 8,
};

struct payload_header {
    static constexpr std::uint32_t magic = 0x43465444;  // "DTFC" in little-endian byte order
    static constexpr std::uint8_t version = 1;
    static constexpr std::size_t size = 32;

    compress::kind kind{};
    std::uint16_t param_a = 0;  // meaning per kind (bits, element format, ...)
    std::uint32_t param_b = 0;  // (block size, k, ...)
    std::uint32_t param_c = 0;  // (flags, seed bits, ...)
    std::uint64_t count = 0;    // elements of the decoded tensor
    std::uint64_t body_bytes = 0;

    // Writes the header into the first 32 bytes of `out` (the caller sized it).
    void write(std::span<std::byte> out) const {
        std::byte* p = out.data();
        wire::store_le<std::uint32_t>(p, magic);
        p[4] = std::byte{version};
        p[5] = static_cast<std::byte>(kind);
        wire::store_le<std::uint16_t>(p + 6, param_a);
        wire::store_le<std::uint32_t>(p + 8, param_b);
        wire::store_le<std::uint32_t>(p + 12, param_c);
        wire::store_le<std::uint64_t>(p + 16, count);
        wire::store_le<std::uint64_t>(p + 24, body_bytes);
    }

    // Reads and checks the header of `payload` for a decoder of `expected` kind that will write
    // `out_count` elements: magic, version, kind, count and that the body is exactly the rest of
    // the payload. Parameter fields are the caller's to check.
    static payload_header read(std::span<const std::byte> payload, compress::kind expected, std::size_t out_count) {
        return read(payload.first(payload.size() < size ? payload.size() : size), payload.size(), expected, out_count);
    }

    // The same for a payload of payload_size bytes whose first min(payload_size, 32) bytes are
    // `head` (a copy of a payload in device memory, say).
    static payload_header read(std::span<const std::byte> head, std::size_t payload_size, compress::kind expected,
                               std::size_t out_count) {
        if (payload_size < size || head.size() < size) {
            throw wire_error(wire_error::reason::truncated,
                             "payload of " + std::to_string(payload_size) + " bytes is shorter than its header");
        }
        const std::byte* p = head.data();
        if (wire::load_le<std::uint32_t>(p) != magic) {
            throw wire_error(wire_error::reason::bad_magic, "not a dtfm compressed payload");
        }
        if (static_cast<std::uint8_t>(p[4]) != version) {
            throw wire_error(wire_error::reason::bad_version,
                             "payload version " + std::to_string(static_cast<int>(p[4])) + ", this build reads 1");
        }
        payload_header h;
        h.kind = static_cast<compress::kind>(p[5]);
        if (h.kind != expected) {
            throw wire_error(wire_error::reason::bad_kind, "payload of compressor kind " +
                                                               std::to_string(static_cast<int>(p[5])) + ", expected " +
                                                               std::to_string(static_cast<int>(expected)));
        }
        h.param_a = wire::load_le<std::uint16_t>(p + 6);
        h.param_b = wire::load_le<std::uint32_t>(p + 8);
        h.param_c = wire::load_le<std::uint32_t>(p + 12);
        h.count = wire::load_le<std::uint64_t>(p + 16);
        h.body_bytes = wire::load_le<std::uint64_t>(p + 24);
        if (h.count != out_count) {
            throw wire_error(wire_error::reason::bad_length, "payload holds " + std::to_string(h.count) +
                                                                 " elements, the output has room for " +
                                                                 std::to_string(out_count));
        }
        if (h.body_bytes != payload_size - size) {
            throw wire_error(wire_error::reason::bad_length, "payload body of " + std::to_string(payload_size - size) +
                                                                 " bytes, its header says " +
                                                                 std::to_string(h.body_bytes));
        }
        return h;
    }

    // For decoders: a parameter field that must equal what this compressor type was built with.
    static void expect(bool ok, const char* field, std::uint64_t got) {
        if (!ok) {
            throw wire_error(wire_error::reason::bad_value,
                             std::string("payload parameter ") + field + " = " + std::to_string(got) +
                                 " does not match this compressor");
        }
    }

    // For decoders: the body length a well-formed payload of these parameters has.
    static void expect_body(const payload_header& h, std::uint64_t bytes) {
        if (h.body_bytes != bytes) {
            throw wire_error(wire_error::reason::bad_length, "payload body of " + std::to_string(h.body_bytes) +
                                                                 " bytes, its parameters need " + std::to_string(bytes));
        }
    }
};

// For encoders: the caller's payload buffer must hold max_payload_bytes(n).
inline void check_capacity(std::span<const std::byte> payload, std::size_t needed, const char* compressor) {
    if (payload.size() < needed) {
        throw error(std::string(compressor) + "::encode: payload buffer of " + std::to_string(payload.size()) +
                    " bytes, needs " + std::to_string(needed) + " (size it with max_payload_bytes)");
    }
}

}  // namespace dtfm::compress
