// schedule::one_f_one_b: PipeDream-Flush's 1F1B (Narayanan et al. 2021): stage s runs S−s−1
// warm-up forwards, then alternates one forward and one backward, then drains the backwards. Same
// bubble as GPipe, but a stage holds at most S−s micro-batches' activations instead of M.
#pragma once

#include <algorithm>
#include <vector>

#include "dtfm/concepts/schedule.hpp"
#include "dtfm/schedule/gpipe.hpp"

namespace dtfm::schedule {

struct one_f_one_b {
    using schedule_concept = schedule_tag;

    std::vector<pipeline_op> ops(int stage, int stages, int microbatches) const {
        dtfm::detail::check_schedule_args(stage, stages, microbatches, "one_f_one_b");
        const int warmup = std::min(stages - stage - 1, microbatches);
        std::vector<pipeline_op> out;
        out.reserve(2 * static_cast<std::size_t>(microbatches));
        int next_forward = 0, next_backward = 0;
        for (; next_forward < warmup; ++next_forward) out.push_back({pipeline_pass::forward, next_forward});
        while (next_forward < microbatches) {
            out.push_back({pipeline_pass::forward, next_forward++});
            out.push_back({pipeline_pass::backward, next_backward++});
        }
        while (next_backward < microbatches) out.push_back({pipeline_pass::backward, next_backward++});
        return out;
    }

    static int in_flight(int stage, int stages, int microbatches) { return std::min(stages - stage, microbatches); }
};

}  // namespace dtfm::schedule
