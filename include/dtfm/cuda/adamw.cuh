// cuda::adamw: optim::adamw on device buffers (cuda_space), one parameter per thread through the
// host optimizer's own update (optim::adamw_step_constants::update), on a stream. The moments
// live on the device; the step constants (bias corrections) are computed on the host per step.
// Give it the stream the gradients are computed on (cuda::gpt_stage::stream()): its update is
// queued after the backward that fills them, with no wait.
#pragma once

#include <thrust/device_vector.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "dtfm/concepts/optimizer.hpp"
#include "dtfm/cuda/payload.cuh"
#include "dtfm/error.hpp"
#include "dtfm/optim/adamw.hpp"
#include "dtfm/spaces.hpp"

namespace dtfm::cuda {

namespace detail {

struct adamw_update {
    optim::adamw_step_constants k;
    float *p, *m, *v;
    const float* g;
    DTFM_HOST_DEVICE void operator()(std::size_t i) const { k.update(p[i], m[i], v[i], g[i]); }
};

}  // namespace detail

class adamw {
public:
    using optimizer_concept = optimizer_tag;
    using value_type = float;
    using memory_space = cuda_space;

    // Options are checked as optim::adamw checks them (config_error).
    explicit adamw(optim::adamw_options o = {}, stream_t stream = nullptr) : options_(optim::adamw(o).settings()), stream_(stream) {}

    // params and grads are device memory; the moments are sized by the first step.
    void step(std::span<float> params, std::span<const float> grads) {
        const std::size_t n = params.size();
        if (grads.size() != n)
            throw error("cuda::adamw: " + std::to_string(n) + " parameters but " + std::to_string(grads.size()) + " gradients");
        if (m_.empty()) {
            m_.assign(n, 0.0f);
            v_.assign(n, 0.0f);
        }
        if (m_.size() != n)
            throw error("cuda::adamw: " + std::to_string(n) + " parameters, the moments hold " + std::to_string(m_.size()));
        ++steps_;
        detail::for_each_index(stream_, n,
                               detail::adamw_update{optim::adamw_step_constants::of(options_, steps_), params.data(),
                                                    thrust::raw_pointer_cast(m_.data()), thrust::raw_pointer_cast(v_.data()),
                                                    grads.data()},
                               "cuda::adamw::step");
    }

    float learning_rate() const noexcept { return options_.lr; }
    void set_learning_rate(float lr) {
        if (!(lr >= 0.0f)) throw config_error("cuda::adamw: learning rate must be ≥ 0");
        options_.lr = lr;
    }
    std::uint64_t steps() const noexcept { return steps_; }

private:
    optim::adamw_options options_;
    stream_t stream_;
    std::uint64_t steps_ = 0;
    thrust::device_vector<float> m_, v_;
};

static_assert(concepts::optimizer<adamw>);

}  // namespace dtfm::cuda
