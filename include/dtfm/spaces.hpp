// Memory spaces: where a buffer lives. Policies name their space (`using memory_space = …`), and
// generic code forwards to `detail::…_impl<Space>`, specialised for cuda_space in dtfm/cuda/.
#pragma once

#include <concepts>
#include <type_traits>

#include "dtfm/config.hpp"

namespace dtfm {

struct memory_space_tag {};

// Ordinary host memory, reachable by every CPU thread.
struct host_space {
    using memory_space_concept = memory_space_tag;
    static constexpr const char* name() noexcept { return "host"; }
};

// Device memory of the current CUDA device. Declared everywhere so host code can name it in
// types; only dtfm/cuda/*.cuh can touch such memory.
struct cuda_space {
    using memory_space_concept = memory_space_tag;
    static constexpr const char* name() noexcept { return "cuda"; }
};

// Whether code running in ExecutionSpace may dereference a pointer into MemorySpace. Only the
// pairs below are accessible; a user space opts in by specialising this trait.
template <class ExecutionSpace, class MemorySpace>
struct space_accessible : std::false_type {};
template <>
struct space_accessible<host_space, host_space> : std::true_type {};
template <>
struct space_accessible<cuda_space, cuda_space> : std::true_type {};

template <class ExecutionSpace, class MemorySpace>
inline constexpr bool space_accessible_v = space_accessible<ExecutionSpace, MemorySpace>::value;

// Whether bytes can move between two spaces by a plain memcpy (both on the host).
template <class A, class B>
inline constexpr bool host_copyable_v = std::same_as<A, host_space> && std::same_as<B, host_space>;

}  // namespace dtfm

// Concepts live in their own namespace: the layer namespaces (dtfm::transport, dtfm::collective,
// dtfm::schedule) take the plain nouns.
namespace dtfm::concepts {

template <class S>
concept memory_space = std::same_as<typename S::memory_space_concept, memory_space_tag> && requires {
    { S::name() } -> std::convertible_to<const char*>;
};

}  // namespace dtfm::concepts
