// Little-endian loads and stores of fixed-width integers at byte offsets: how every dtfm wire
// header is written, so payloads read the same on any host.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace dtfm::wire {

template <class U>
    requires std::is_unsigned_v<U>
inline void store_le(std::byte* at, U value) {
    for (std::size_t i = 0; i < sizeof(U); ++i) at[i] = static_cast<std::byte>((value >> (8 * i)) & 0xFFu);
}

template <class U>
    requires std::is_unsigned_v<U>
inline U load_le(const std::byte* at) {
    U value = 0;
    for (std::size_t i = 0; i < sizeof(U); ++i) value |= static_cast<U>(static_cast<U>(at[i]) << (8 * i));
    return value;
}

}  // namespace dtfm::wire
