// optim::clip_by_global_norm: gradient clipping by the global L2 norm (Pascanu, Mikolov & Bengio
// 2013): when ‖g‖ > max_norm, g ← g·max_norm/(‖g‖ + 10⁻⁶). Returns ‖g‖ before clipping. For a
// model spread over ranks (pipeline stages), sum sum_of_squares over the ranks, take the root,
// and scale each part by clip_coefficient of that norm.
#pragma once

#include <cmath>
#include <cstddef>
#include <span>

#include "dtfm/error.hpp"

namespace dtfm::optim {

// Σ g², accumulated in double.
inline double sum_of_squares(std::span<const float> g) noexcept {
    double s = 0.0;
    for (float v : g) s += static_cast<double>(v) * v;
    return s;
}

// The factor that brings a gradient of the given norm down to max_norm: 1 when it is already no
// larger (or the norm is not finite: then clipping cannot help, and the caller should skip the step).
inline float clip_coefficient(double norm, float max_norm) noexcept {
    if (!std::isfinite(norm) || norm <= static_cast<double>(max_norm)) return 1.0f;
    return static_cast<float>(static_cast<double>(max_norm) / (norm + 1e-6));
}

// Clips the gradients of several tensors (or stages held here) by their joint norm; returns it.
inline float clip_by_global_norm(std::span<const std::span<float>> parts, float max_norm) {
    if (!(max_norm > 0.0f)) throw config_error("optim::clip_by_global_norm: max_norm must be positive");
    double s = 0.0;
    for (auto p : parts) s += sum_of_squares(p);
    const double norm = std::sqrt(s);
    const float c = clip_coefficient(norm, max_norm);
    if (c != 1.0f)
        for (auto p : parts)
            for (float& v : p) v *= c;
    return static_cast<float>(norm);
}

inline float clip_by_global_norm(std::span<float> grads, float max_norm) {
    const std::span<float> parts[] = {grads};
    return clip_by_global_norm(std::span<const std::span<float>>(parts), max_norm);
}

}  // namespace dtfm::optim
