// optim::adamw: Adam with decoupled weight decay (Loshchilov & Hutter 2019, Algorithm 2, as in
// PyTorch's AdamW): θ ← θ·(1 − lr·λ); m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²;
// θ ← θ − lr·m̂/(√v̂ + ε) with m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "dtfm/concepts/optimizer.hpp"
#include "dtfm/config.hpp"
#include "dtfm/error.hpp"

namespace dtfm::optim {

struct adamw_options {
    float lr = 1e-3f;
    float beta1 = 0.9f;
    float beta2 = 0.999f;
    float eps = 1e-8f;
    float weight_decay = 0.01f;  // λ, applied to every parameter given to step
};

// One step's constants and the update of one parameter, shared with the CUDA optimizer
// (cuda/adamw.cuh), which runs it one element per thread.
struct adamw_step_constants {
    float lr, beta1, beta2, eps;
    float decay;  // 1 − lr·λ
    float c1, c2;  // 1/(1 − β₁ᵗ), 1/(1 − β₂ᵗ)

    // The constants of step t (1 for the first step) under options o.
    static adamw_step_constants of(const adamw_options& o, std::uint64_t t) {
        const double td = static_cast<double>(t);
        return {o.lr, o.beta1, o.beta2, o.eps, 1.0f - o.lr * o.weight_decay,
                static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(o.beta1), td))),
                static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(o.beta2), td)))};
    }

    DTFM_HOST_DEVICE void update(float& p, float& m, float& v, float g) const {
        m = beta1 * m + (1.0f - beta1) * g;
        v = beta2 * v + (1.0f - beta2) * g * g;
#if defined(__CUDA_ARCH__)
        p = p * decay - lr * (m * c1) / (::sqrtf(v * c2) + eps);
#else
        p = p * decay - lr * (m * c1) / (std::sqrt(v * c2) + eps);
#endif
    }
};

class adamw {
public:
    using optimizer_concept = optimizer_tag;
    using value_type = float;

    explicit adamw(adamw_options o = {}) : options_(o) {
        if (!(o.lr >= 0.0f) || !(o.beta1 >= 0.0f && o.beta1 < 1.0f) || !(o.beta2 >= 0.0f && o.beta2 < 1.0f) ||
            !(o.eps > 0.0f) || !(o.weight_decay >= 0.0f))
            throw config_error("optim::adamw: need lr ≥ 0, 0 ≤ β₁, β₂ < 1, ε > 0 and weight_decay ≥ 0");
    }

    // The moments are sized by the first step; later steps must pass as many parameters.
    void step(std::span<float> params, std::span<const float> grads) {
        const std::size_t n = params.size();
        if (grads.size() != n)
            throw error("optim::adamw: " + std::to_string(n) + " parameters but " + std::to_string(grads.size()) + " gradients");
        if (m_.empty()) {
            m_.assign(n, 0.0f);
            v_.assign(n, 0.0f);
        }
        if (m_.size() != n)
            throw error("optim::adamw: " + std::to_string(n) + " parameters, the moments hold " + std::to_string(m_.size()));
        ++steps_;
        const adamw_step_constants k = adamw_step_constants::of(options_, steps_);
        for (std::size_t i = 0; i < n; ++i) k.update(params[i], m_[i], v_[i], grads[i]);
    }

    float learning_rate() const noexcept { return options_.lr; }
    void set_learning_rate(float lr) {
        if (!(lr >= 0.0f)) throw config_error("optim::adamw: learning rate must be ≥ 0");
        options_.lr = lr;
    }
    const adamw_options& settings() const noexcept { return options_; }
    // Steps taken (t of the bias correction), and the moments, for checkpoints and tests.
    std::uint64_t steps() const noexcept { return steps_; }
    std::span<const float> first_moment() const noexcept { return m_; }
    std::span<const float> second_moment() const noexcept { return v_; }
    // Restores a checkpointed state: t and both moments (the same size).
    void restore(std::uint64_t steps, std::span<const float> m, std::span<const float> v) {
        if (m.size() != v.size()) throw error("optim::adamw: restored moments differ in size");
        steps_ = steps;
        m_.assign(m.begin(), m.end());
        v_.assign(v.begin(), v.end());
    }
    // t and both moments, for train::checkpoint (the serialize(Archive&) protocol).
    template <class Archive>
    void serialize(Archive& a) {
        a.value("steps", steps_);
        a.values("m", m_);
        a.values("v", v_);
    }
    void reset() noexcept {
        steps_ = 0;
        m_.clear();
        v_.clear();
    }

private:
    adamw_options options_;
    std::uint64_t steps_ = 0;
    std::vector<float> m_, v_;
};

}  // namespace dtfm::optim
