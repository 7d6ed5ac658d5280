// collective: averages a buffer over the ranks of a transport's group, asynchronously (exactly
// for ring all-reduce; an estimate with error feedback for compressed and gossip collectives).
#pragma once

#include <concepts>
#include <span>

#include "dtfm/concepts/completion_handle.hpp"
#include "dtfm/concepts/transport.hpp"

namespace dtfm {

struct collective_tag {};

}  // namespace dtfm

namespace dtfm::concepts {

// C opts in with `using collective_concept = dtfm::collective_tag;` and names its value_type.
// allreduce(t, data) starts the operation and returns a handle; data holds the average over the
// group once the handle completes, and must stay alive until then.
template <class C, class T>
concept collective = transport<T> && std::same_as<typename C::collective_concept, collective_tag> &&
                     requires(C& c, T& t, std::span<typename C::value_type> data) {
                         { c.allreduce(t, data) } -> completion_handle;
                     };

}  // namespace dtfm::concepts
