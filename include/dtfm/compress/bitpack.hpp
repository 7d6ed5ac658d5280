// Bit packing of b-bit unsigned codes (b = 1, 2, 3, 4, 8) into bytes, little-endian bit order:
// code i occupies bits [i·b, i·b + b) of the packed stream, so 8 codes always fill exactly b bytes
// and a stream of n codes takes ceil(n·b / 8) bytes. The loops work on groups of 8 codes without
// data-dependent branches, so g++ vectorises them; the per-group functions run in CUDA kernels.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "dtfm/config.hpp"

// g++ 12 warns, wrongly, of overflows on the vectorised paths of these loops when they are inlined
// where a buffer is short (the paths are never taken for it); users build with -Werror too.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif

namespace dtfm::compress {

template <int Bits>
concept packable_bits = Bits == 1 || Bits == 2 || Bits == 3 || Bits == 4 || Bits == 8;

// Bytes that n codes of Bits bits occupy; written so that no n overflows.
template <int Bits>
    requires packable_bits<Bits>
DTFM_HOST_DEVICE constexpr std::size_t packed_bytes(std::size_t n) {
    constexpr auto b = static_cast<std::size_t>(Bits);
    return n / 8 * b + (n % 8 * b + 7) / 8;
}

namespace detail {

// `field` repeated every `width` bits across a 64-bit word.
DTFM_HOST_DEVICE constexpr std::uint64_t repeated(std::uint64_t field, int width) {
    std::uint64_t word = 0;
    for (int k = 0; k < 64; k += width) word |= field << k;
    return word;
}

// Moves the 8 fields of Bits bits at the bottom of a word apart, field j to byte j, in three
// shift-or-mask steps (halves, quarters, bytes). spread_fields undoes gather_fields.
template <int Bits>
DTFM_HOST_DEVICE std::uint64_t spread_fields(std::uint64_t x) {
    x = (x | x << (32 - 4 * Bits)) & repeated((std::uint64_t{1} << (4 * Bits)) - 1, 32);
    x = (x | x << (16 - 2 * Bits)) & repeated((std::uint64_t{1} << (2 * Bits)) - 1, 16);
    return (x | x << (8 - Bits)) & repeated((std::uint64_t{1} << Bits) - 1, 8);
}

template <int Bits>
DTFM_HOST_DEVICE std::uint64_t gather_fields(std::uint64_t x) {
    x &= repeated((std::uint64_t{1} << Bits) - 1, 8);
    x = (x | x >> (8 - Bits)) & repeated((std::uint64_t{1} << (2 * Bits)) - 1, 16);
    x = (x | x >> (16 - 2 * Bits)) & repeated((std::uint64_t{1} << (4 * Bits)) - 1, 32);
    return (x | x >> (32 - 4 * Bits)) & ((std::uint64_t{1} << (8 * Bits)) - 1);
}

// 8 bytes as a little-endian word and back: memcpy on little-endian hosts (and GPUs), because
// g++ does not merge 8 shifted byte stores into one once the loop is vectorised (3× slower).
DTFM_HOST_DEVICE std::uint64_t load_word(const std::uint8_t* from) {
    std::uint64_t x = 0;
    if constexpr (std::endian::native == std::endian::little) {
        std::memcpy(&x, from, 8);
    } else {
        for (int t = 0; t < 8; ++t) x |= static_cast<std::uint64_t>(from[t]) << (8 * t);
    }
    return x;
}

DTFM_HOST_DEVICE void store_word(std::uint8_t* to, std::uint64_t x) {
    if constexpr (std::endian::native == std::endian::little) {
        std::memcpy(to, &x, 8);
    } else {
        for (int t = 0; t < 8; ++t) to[t] = static_cast<std::uint8_t>((x >> (8 * t)) & 0xFFu);
    }
}

// A little-endian word of sizeof(Word) bytes at an arbitrary address.
template <class Word>
DTFM_HOST_DEVICE Word load_le_word(const std::byte* from) {
    Word x = 0;
    if constexpr (std::endian::native == std::endian::little) {
        std::memcpy(&x, from, sizeof(Word));
    } else {
        for (std::size_t t = 0; t < sizeof(Word); ++t) x |= static_cast<Word>(static_cast<Word>(from[t]) << (8 * t));
    }
    return x;
}

}  // namespace detail

// Packs 8 codes into Bits bytes. Only the low Bits bits of each code are kept. Each width takes
// the form g++ vectorises best (measured): per-byte shifts and ors for 1, 2, 4 and 8 bits, the
// 64-bit word for 3 bits, whose fields straddle bytes.
template <int Bits>
    requires packable_bits<Bits>
DTFM_HOST_DEVICE void pack_group(const std::uint8_t* c, std::byte* out) {
    constexpr unsigned mask = (1u << Bits) - 1u;
    if constexpr (Bits == 8) {
        for (int j = 0; j < 8; ++j) out[j] = static_cast<std::byte>(c[j]);
    } else if constexpr (Bits == 3) {
        const std::uint64_t x = detail::gather_fields<3>(detail::load_word(c));
        for (int t = 0; t < 3; ++t) out[t] = static_cast<std::byte>((x >> (8 * t)) & 0xFFu);
    } else {
        constexpr int per_byte = 8 / Bits;
        for (int t = 0; t < Bits; ++t) {
            unsigned v = 0;
            for (int j = 0; j < per_byte; ++j) v |= (c[t * per_byte + j] & mask) << (Bits * j);
            out[t] = static_cast<std::byte>(v);
        }
    }
}

// Unpacks Bits bytes into 8 codes: byte by byte for 4 and 8 bits, in a 64-bit word below that.
template <int Bits>
    requires packable_bits<Bits>
DTFM_HOST_DEVICE void unpack_group(const std::byte* in, std::uint8_t* c) {
    if constexpr (Bits == 8) {
        for (int j = 0; j < 8; ++j) c[j] = static_cast<std::uint8_t>(in[j]);
    } else if constexpr (Bits == 4) {
        for (int t = 0; t < 4; ++t) {
            const auto v = static_cast<unsigned>(in[t]);
            c[2 * t] = static_cast<std::uint8_t>(v & 0xFu);
            c[2 * t + 1] = static_cast<std::uint8_t>(v >> 4);
        }
    } else {
        std::uint64_t x = 0;
        for (int t = 0; t < Bits; ++t) x |= static_cast<std::uint64_t>(in[t]) << (8 * t);
        if constexpr (Bits == 1) {
            // The byte copied into all 8 bytes, bit j kept in byte j, then moved to bit 7 of its
            // byte by adding 0x80 − 2^j (no carry crosses a byte) and down to bit 0.
            x = (x * 0x0101010101010101u) & 0x8040201008040201u;
            x = ((x + 0x00406070787C7E7Fu) >> 7) & 0x0101010101010101u;
        } else {
            x = detail::spread_fields<Bits>(x);
        }
        detail::store_word(c, x);
    }
}

// Packs codes.size() codes into packed_bytes<Bits>(codes.size()) bytes at out. The unused high
// bits of a last, partial byte are zero.
template <int Bits>
    requires packable_bits<Bits>
DTFM_HOST_DEVICE void pack_bits(std::span<const std::uint8_t> codes, std::byte* out) {
    const std::size_t n = codes.size();
    const std::size_t groups = n / 8;
    const std::uint8_t* c = codes.data();
    for (std::size_t g = 0; g < groups; ++g) pack_group<Bits>(c + 8 * g, out + Bits * g);
    if (const std::size_t rest = n % 8; rest != 0) {
        std::uint8_t tail[8] = {};
        std::byte packed[Bits] = {};
        for (std::size_t j = 0; j < rest; ++j) tail[j] = c[8 * groups + j];
        pack_group<Bits>(tail, packed);
        for (std::size_t t = 0; t < packed_bytes<Bits>(rest); ++t) out[Bits * groups + t] = packed[t];
    }
}

// Unpacks codes.size() codes from the packed_bytes<Bits>(codes.size()) bytes at in; reads no byte
// beyond them, and ignores the unused bits of a last, partial byte.
template <int Bits>
    requires packable_bits<Bits>
DTFM_HOST_DEVICE void unpack_bits(const std::byte* in, std::span<std::uint8_t> codes) {
    const std::size_t n = codes.size();
    const std::size_t groups = n / 8;
    std::uint8_t* c = codes.data();
    for (std::size_t g = 0; g < groups; ++g) unpack_group<Bits>(in + Bits * g, c + 8 * g);
    if (const std::size_t rest = n % 8; rest != 0) {
        std::byte packed[Bits] = {};
        std::uint8_t tail[8];
        for (std::size_t t = 0; t < packed_bytes<Bits>(rest); ++t) packed[t] = in[Bits * groups + t];
        unpack_group<Bits>(packed, tail);
        for (std::size_t j = 0; j < rest; ++j) c[8 * groups + j] = tail[j];
    }
}

}  // namespace dtfm::compress

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
