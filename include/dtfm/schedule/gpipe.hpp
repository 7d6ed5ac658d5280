// schedule::gpipe: every micro-batch's forward, then every backward in reverse order (Huang et al.
// 2019). Simple; holds the activations of all M micro-batches; bubble (S−1)/(M+S−1).
#pragma once

#include <string>
#include <vector>

#include "dtfm/concepts/schedule.hpp"
#include "dtfm/error.hpp"

namespace dtfm::detail {

inline void check_schedule_args(int stage, int stages, int microbatches, const char* who) {
    if (stages < 1 || stage < 0 || stage >= stages || microbatches < 1)
        throw config_error(std::string(who) + ": need 0 ≤ stage < stages and at least one micro-batch (stage " +
                           std::to_string(stage) + ", stages " + std::to_string(stages) + ", micro-batches " +
                           std::to_string(microbatches) + ")");
}

}  // namespace dtfm::detail

namespace dtfm::schedule {

struct gpipe {
    using schedule_concept = schedule_tag;

    std::vector<pipeline_op> ops(int stage, int stages, int microbatches) const {
        dtfm::detail::check_schedule_args(stage, stages, microbatches, "gpipe");
        std::vector<pipeline_op> out;
        out.reserve(2 * static_cast<std::size_t>(microbatches));
        for (int m = 0; m < microbatches; ++m) out.push_back({pipeline_pass::forward, m});
        for (int m = microbatches - 1; m >= 0; --m) out.push_back({pipeline_pass::backward, m});
        return out;
    }

    // Micro-batches whose activations a stage holds at once.
    static int in_flight(int /*stage*/, int /*stages*/, int microbatches) { return microbatches; }
};

}  // namespace dtfm::schedule
