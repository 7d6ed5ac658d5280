// optimizer: updates a flat span of parameters from their gradients, keeping its own state
// (momentum, Adam moments) sized to the parameters.
#pragma once

#include <concepts>
#include <span>

namespace dtfm {

struct optimizer_tag {};

}  // namespace dtfm

namespace dtfm::concepts {

// O opts in with `using optimizer_concept = dtfm::optimizer_tag;`. step(params, grads) applies one
// update; params and grads have the same size on every call.
template <class O>
concept optimizer = std::same_as<typename O::optimizer_concept, optimizer_tag> &&
                    requires(O& o, std::span<typename O::value_type> params,
                             std::span<const typename O::value_type> grads) {
                        { o.step(params, grads) } -> std::same_as<void>;
                    };

}  // namespace dtfm::concepts
