// optim::warmup_cosine: the learning rate at a step, linear warm-up then cosine decay
// (Loshchilov & Hutter 2017, without restarts; GPT-2/3's schedule):
//   lr(s) = peak·(s + 1)/W                                        for s < W
//   lr(s) = min + ½(peak − min)(1 + cos(π·(s − W)/(N − W)))       for W ≤ s ≤ N
//   lr(s) = min                                                   for s > N
#pragma once

#include <cstddef>
#include <cmath>

#include "dtfm/error.hpp"

namespace dtfm::optim {

struct warmup_cosine {
    float peak_lr = 1e-3f;
    float min_lr = 0.0f;
    std::size_t warmup_steps = 0;  // W
    std::size_t total_steps = 1;   // N: where the decay reaches min_lr

    // Throws config_error unless 0 ≤ min ≤ peak and W ≤ N.
    void validate() const {
        if (!(min_lr >= 0.0f && min_lr <= peak_lr) || warmup_steps > total_steps)
            throw config_error("optim::warmup_cosine: need 0 ≤ min_lr ≤ peak_lr and warmup_steps ≤ total_steps");
    }

    // The learning rate of step s (counted from 0).
    float learning_rate(std::size_t s) const noexcept {
        if (s < warmup_steps) return peak_lr * static_cast<float>(s + 1) / static_cast<float>(warmup_steps);
        if (s >= total_steps) return min_lr;
        const double pi = 3.14159265358979323846;
        const double progress = static_cast<double>(s - warmup_steps) / static_cast<double>(total_steps - warmup_steps);
        return min_lr + static_cast<float>(0.5 * (1.0 + std::cos(pi * progress))) * (peak_lr - min_lr);
    }
    float operator()(std::size_t s) const noexcept { return learning_rate(s); }
};

}  // namespace dtfm::optim
