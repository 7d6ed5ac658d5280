// optim::sgd: stochastic gradient descent with heavy-ball or Nesterov momentum and L2 weight decay
// (Sutskever et al. 2013): v ← μv + g; θ ← θ − lr·v, or θ ← θ − lr·(g + μv) with Nesterov.
// DiLoCo's outer optimizer is this with lr 0.7, μ 0.9, Nesterov.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "dtfm/concepts/optimizer.hpp"
#include "dtfm/error.hpp"

namespace dtfm::optim {

struct sgd_options {
    float lr = 0.01f;
    float momentum = 0.0f;
    bool nesterov = false;
    float weight_decay = 0.0f;  // added to the gradient as weight_decay·θ
};

class sgd {
public:
    using optimizer_concept = optimizer_tag;
    using value_type = float;

    explicit sgd(sgd_options o = {}) : options_(o) {
        if (!(o.lr >= 0.0f) || !(o.momentum >= 0.0f && o.momentum < 1.0f) || !(o.weight_decay >= 0.0f))
            throw config_error("optim::sgd: need lr ≥ 0, 0 ≤ momentum < 1 and weight_decay ≥ 0");
        if (o.nesterov && o.momentum == 0.0f) throw config_error("optim::sgd: Nesterov needs a momentum");
    }

    // The velocity is sized by the first step; later steps must pass as many parameters.
    void step(std::span<float> params, std::span<const float> grads) {
        const std::size_t n = params.size();
        if (grads.size() != n)
            throw error("optim::sgd: " + std::to_string(n) + " parameters but " + std::to_string(grads.size()) + " gradients");
        const float lr = options_.lr, mu = options_.momentum, wd = options_.weight_decay;
        if (mu == 0.0f) {
            for (std::size_t i = 0; i < n; ++i) params[i] -= lr * (grads[i] + wd * params[i]);
            return;
        }
        if (velocity_.empty()) velocity_.assign(n, 0.0f);
        if (velocity_.size() != n)
            throw error("optim::sgd: " + std::to_string(n) + " parameters, the momentum holds " + std::to_string(velocity_.size()));
        for (std::size_t i = 0; i < n; ++i) {
            const float g = grads[i] + wd * params[i];
            velocity_[i] = mu * velocity_[i] + g;
            params[i] -= lr * (options_.nesterov ? g + mu * velocity_[i] : velocity_[i]);
        }
    }

    float learning_rate() const noexcept { return options_.lr; }
    void set_learning_rate(float lr) { options_.lr = lr; }
    const sgd_options& settings() const noexcept { return options_; }
    std::span<const float> velocity() const noexcept { return velocity_; }
    void reset() noexcept { velocity_.clear(); }

    // The momentum, for checkpoints (train::checkpoint_saver / checkpoint_loader).
    template <class Archive>
    void serialize(Archive& a) {
        a.values("velocity", velocity_);
    }

private:
    sgd_options options_;
    std::vector<float> velocity_;
};

}  // namespace dtfm::optim
