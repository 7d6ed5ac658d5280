// CRC32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum in dtfm's message headers on
// untrusted links. Uses the SSE4.2 crc32 instruction when the CPU has it, else slicing-by-8 tables.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define DTFM_CRC32C_HAS_SSE42_PATH 1
#include <nmmintrin.h>
#else
#define DTFM_CRC32C_HAS_SSE42_PATH 0
#endif

namespace dtfm::detail {

using crc32c_tables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr crc32c_tables make_crc32c_tables() {
    crc32c_tables t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        t[0][i] = c;
    }
    for (std::size_t i = 0; i < 256; ++i) {
        for (std::size_t s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFFu];
    }
    return t;
}

inline constexpr crc32c_tables crc32c_table = make_crc32c_tables();

// Continues a CRC over `bytes`; `crc` is the raw (not inverted) register.
inline std::uint32_t crc32c_update_portable(std::uint32_t crc, const unsigned char* p, std::size_t n) {
    const auto& t = crc32c_table;
    while (n >= 8) {
        std::uint64_t word;
        std::memcpy(&word, p, 8);
        if constexpr (std::endian::native == std::endian::big) word = __builtin_bswap64(word);
        const auto lo = static_cast<std::uint32_t>(word) ^ crc;
        const auto hi = static_cast<std::uint32_t>(word >> 32);
        crc = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^ t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^
              t[3][hi & 0xFFu] ^ t[2][(hi >> 8) & 0xFFu] ^ t[1][(hi >> 16) & 0xFFu] ^ t[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xFFu];
    return crc;
}

#if DTFM_CRC32C_HAS_SSE42_PATH
__attribute__((target("sse4.2"))) inline std::uint32_t crc32c_update_sse42(std::uint32_t crc, const unsigned char* p,
                                                                            std::size_t n) {
    std::uint64_t c = crc;
    while (n >= 8) {
        std::uint64_t word;
        std::memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        n -= 8;
    }
    auto c32 = static_cast<std::uint32_t>(c);
    while (n--) c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}

inline bool cpu_has_sse42() {
    static const bool has = __builtin_cpu_supports("sse4.2");
    return has;
}
#endif

}  // namespace dtfm::detail

namespace dtfm::wire {

// CRC32C of `bytes`, continuing from `previous` (the CRC of the bytes before them, 0 to start).
inline std::uint32_t crc32c(std::span<const std::byte> bytes, std::uint32_t previous = 0) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    std::uint32_t crc = ~previous;
#if DTFM_CRC32C_HAS_SSE42_PATH
    if (dtfm::detail::cpu_has_sse42()) return ~dtfm::detail::crc32c_update_sse42(crc, p, bytes.size());
#endif
    return ~dtfm::detail::crc32c_update_portable(crc, p, bytes.size());
}

}  // namespace dtfm::wire
