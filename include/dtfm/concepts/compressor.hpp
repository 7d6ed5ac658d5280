// compressor: turns a span of values into a self-describing payload and back. Compressors may keep
// state (residuals, caches); callers own both buffers and size them once with max_payload_bytes.
#pragma once

#include <concepts>
#include <cstddef>
#include <span>

#include "dtfm/spaces.hpp"

namespace dtfm {

struct compressor_tag {};

}  // namespace dtfm

namespace dtfm::concepts {

// C opts in with `using compressor_concept = dtfm::compressor_tag;`. encode writes at most
// max_payload_bytes(values.size()) bytes and returns how many it wrote; decode reads a payload
// (possibly from an untrusted peer: a malformed one raises dtfm::wire_error) into exactly
// out.size() values.
template <class C>
concept compressor = std::same_as<typename C::compressor_concept, compressor_tag> &&
                     memory_space<typename C::memory_space> &&
                     requires(C& c, const C& cc, std::size_t n, std::span<const typename C::value_type> values,
                              std::span<std::byte> payload, std::span<const std::byte> received,
                              std::span<typename C::value_type> out) {
                         { cc.max_payload_bytes(n) } -> std::same_as<std::size_t>;
                         { c.encode(values, payload) } -> std::same_as<std::size_t>;
                         { c.decode(received, out) } -> std::same_as<void>;
                     };

// A compressor whose buffers live in Space: a CUDA compressor handed host buffers fails here, at
// compile time, with this concept's name.
template <class C, class Space>
concept compressor_for = compressor<C> && std::same_as<typename C::memory_space, Space>;

}  // namespace dtfm::concepts
