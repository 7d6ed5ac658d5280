// schedule: the order in which one pipeline stage runs the forward and backward passes of its
// micro-batches (GPipe: all forwards then all backwards; 1F1B: interleaved after a warm-up).
#pragma once

#include <concepts>
#include <cstdint>
#include <vector>

namespace dtfm {

struct schedule_tag {};

enum class pipeline_pass : std::uint8_t { forward, backward };

// One step of a stage: run `pass` on micro-batch `microbatch`. A forward receives from the
// previous stage and sends to the next; a backward goes the other way.
struct pipeline_op {
    pipeline_pass pass;
    int microbatch;
    friend constexpr bool operator==(const pipeline_op&, const pipeline_op&) = default;
};

}  // namespace dtfm

namespace dtfm::concepts {

// S opts in with `using schedule_concept = dtfm::schedule_tag;`. ops(stage, stages, microbatches)
// lists every op of that stage for one iteration, each micro-batch's forward before its backward.
template <class S>
concept schedule = std::same_as<typename S::schedule_concept, schedule_tag> &&
                   requires(const S& s, int stage, int stages, int microbatches) {
                       { s.ops(stage, stages, microbatches) } -> std::same_as<std::vector<pipeline_op>>;
                   };

}  // namespace dtfm::concepts
