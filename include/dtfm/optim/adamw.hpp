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
#include "dtfm/error.hpp"

namespace dtfm::optim {

struct adamw_options {
    float lr = 1e-3f;
    float beta1 = 0.9f;
    float beta2 = 0.999f;
    float eps = 1e-8f;
    float weight_decay = 0.01f;  // λ, applied to every parameter given to step
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
        const double t = static_cast<double>(steps_);
        const auto c1 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(options_.beta1), t)));
        const auto c2 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(options_.beta2), t)));
        const float lr = options_.lr, b1 = options_.beta1, b2 = options_.beta2, eps = options_.eps;
        const float decay = 1.0f - lr * options_.weight_decay;
        for (std::size_t i = 0; i < n; ++i) {
            const float g = grads[i];
            m_[i] = b1 * m_[i] + (1.0f - b1) * g;
            v_[i] = b2 * v_[i] + (1.0f - b2) * g * g;
            params[i] = params[i] * decay - lr * (m_[i] * c1) / (std::sqrt(v_[i] * c2) + eps);
        }
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
