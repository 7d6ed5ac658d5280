#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <span>
#include <string_view>
#include <vector>

#include "dtfm/wire/crc32c.hpp"
#include "dtfm/wire/endian.hpp"

namespace {
std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }
}  // namespace

TEST_CASE("crc32c matches the published check values", "[wire][crc32c]") {
    REQUIRE(dtfm::wire::crc32c(bytes("123456789")) == 0xE3069283u);  // the CRC catalogue's check value
    REQUIRE(dtfm::wire::crc32c({}) == 0u);
    const std::vector<std::byte> zeros(32, std::byte{0});
    REQUIRE(dtfm::wire::crc32c(zeros) == 0x8A9136AAu);  // RFC 3720 (iSCSI) B.4
    const std::vector<std::byte> ones(32, std::byte{0xFF});
    REQUIRE(dtfm::wire::crc32c(ones) == 0x62A8AB43u);
    std::vector<std::byte> ascending(32);
    for (std::size_t i = 0; i < 32; ++i) ascending[i] = static_cast<std::byte>(i);
    REQUIRE(dtfm::wire::crc32c(ascending) == 0x46DD794Eu);
}

TEST_CASE("crc32c: the table path and the hardware path agree, and CRCs continue", "[wire][crc32c]") {
    std::mt19937 rng(7);
    std::vector<std::byte> data(4099);
    for (auto& b : data) b = static_cast<std::byte>(rng() & 0xFFu);
    for (std::size_t n : {0u, 1u, 7u, 8u, 9u, 63u, 64u, 1000u, 4099u}) {
        const auto span = std::span<const std::byte>(data).first(n);
        const auto* p = reinterpret_cast<const unsigned char*>(span.data());
        const std::uint32_t portable = ~dtfm::detail::crc32c_update_portable(~0u, p, n);
        REQUIRE(dtfm::wire::crc32c(span) == portable);
#if DTFM_CRC32C_HAS_SSE42_PATH
        if (dtfm::detail::cpu_has_sse42()) REQUIRE(~dtfm::detail::crc32c_update_sse42(~0u, p, n) == portable);
#endif
        for (std::size_t cut : {std::size_t{0}, n / 3, n}) {
            const auto first = dtfm::wire::crc32c(span.first(cut));
            REQUIRE(dtfm::wire::crc32c(span.subspan(cut), first) == portable);
        }
    }
}

TEST_CASE("crc32c detects every single-bit flip", "[wire][crc32c]") {
    std::vector<std::byte> data(64);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 37);
    const auto good = dtfm::wire::crc32c(data);
    for (std::size_t bit = 0; bit < data.size() * 8; ++bit) {
        data[bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
        REQUIRE(dtfm::wire::crc32c(data) != good);
        data[bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
    }
}

TEST_CASE("little-endian stores and loads round-trip", "[wire][endian]") {
    std::byte buf[8];
    dtfm::wire::store_le<std::uint32_t>(buf, 0x11223344u);
    REQUIRE(buf[0] == std::byte{0x44});
    REQUIRE(buf[3] == std::byte{0x11});
    REQUIRE(dtfm::wire::load_le<std::uint32_t>(buf) == 0x11223344u);
    dtfm::wire::store_le<std::uint64_t>(buf, 0x0102030405060708ull);
    REQUIRE(dtfm::wire::load_le<std::uint64_t>(buf) == 0x0102030405060708ull);
    dtfm::wire::store_le<std::uint16_t>(buf, 0xBEEF);
    REQUIRE(dtfm::wire::load_le<std::uint16_t>(buf) == 0xBEEF);
}
