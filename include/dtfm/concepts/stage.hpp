// stage: one contiguous part of a model, as a pipeline runs it: forward on a micro-batch's input,
// backward from the gradient of its output, with its parameters and gradients as flat spans.
#pragma once

#include <concepts>
#include <span>

#include "dtfm/spaces.hpp"

namespace dtfm {

struct stage_tag {};

}  // namespace dtfm

namespace dtfm::concepts {

// S opts in with `using stage_concept = dtfm::stage_tag;`. value_type is the parameter type;
// input_type and output_type the element types it receives and sends (token ids for a first
// stage, activations for the others). forward keeps what backward of the same micro-batch needs.
template <class S>
concept stage = std::same_as<typename S::stage_concept, stage_tag> && memory_space<typename S::memory_space> &&
                requires(S& s, int microbatch, std::span<const typename S::input_type> in,
                         std::span<typename S::output_type> out, std::span<const typename S::output_type> grad_out,
                         std::span<typename S::input_type> grad_in) {
                    { s.parameters() } -> std::same_as<std::span<typename S::value_type>>;
                    { s.gradients() } -> std::same_as<std::span<typename S::value_type>>;
                    { s.forward(microbatch, in, out) } -> std::same_as<void>;
                    { s.backward(microbatch, grad_out, grad_in) } -> std::same_as<void>;
                };

}  // namespace dtfm::concepts
