// nn::cross_entropy: softmax cross-entropy of n rows of logits against target ids, averaged over
// the rows: L = −(1/n)·Σ_r log softmax(z_r)[y_r]. Forward keeps the softmax; backward
// dz = scale·(softmax − onehot(y))/n, where scale = dObjective/dL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dtfm/config.hpp"
#include "dtfm/nn/detail/math.hpp"
#include "dtfm/nn/detail/shape.hpp"

namespace dtfm::nn {

namespace detail {

// One row, shared with the CUDA stage (one row per thread): p = softmax(z) (p may alias z), and the
// row's loss log Σ exp(z − max) − (z_y − max). y must be in [0, vocab).
DTFM_HOST_DEVICE double cross_entropy_row(const float* z, float* p, std::size_t y, std::size_t vocab) {
    float mx = z[0];
    for (std::size_t i = 1; i < vocab; ++i)
        if (mx < z[i]) mx = z[i];
    const float zy = z[y];
    double sum = 0.0;
    for (std::size_t i = 0; i < vocab; ++i) {
        p[i] = detail::exp(z[i] - mx);
        sum += p[i];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (std::size_t i = 0; i < vocab; ++i) p[i] *= inv;
    return detail::log(sum) - static_cast<double>(zy - mx);
}

// d = f·(p − onehot(y)), f = scale/n.
DTFM_HOST_DEVICE void cross_entropy_row_backward(const float* p, std::size_t y, float f, float* d, std::size_t vocab) {
    for (std::size_t i = 0; i < vocab; ++i) d[i] = f * p[i];
    d[y] -= f;
}

}  // namespace detail

// Returns the mean loss; probs [n × vocab] receives the softmax of each row (it may alias logits).
inline float cross_entropy_forward(std::span<const float> logits, std::span<const std::int32_t> targets, std::span<float> probs,
                                   std::size_t n, std::size_t vocab) {
    detail::expect_size(logits.size(), n * vocab, "cross_entropy_forward", "logits");
    detail::expect_size(targets.size(), n, "cross_entropy_forward", "targets");
    detail::expect_size(probs.size(), n * vocab, "cross_entropy_forward", "probs");
    double loss = 0.0;
    for (std::size_t r = 0; r < n; ++r)
        loss += detail::cross_entropy_row(logits.data() + r * vocab, probs.data() + r * vocab,
                                          detail::token_row(targets[r], vocab, "cross_entropy_forward"), vocab);
    return n == 0 ? 0.0f : static_cast<float>(loss / static_cast<double>(n));
}

// dlogits (overwritten) = scale·(probs − onehot(targets))/n.
inline void cross_entropy_backward(std::span<const float> probs, std::span<const std::int32_t> targets, float scale,
                                   std::span<float> dlogits, std::size_t n, std::size_t vocab) {
    detail::expect_size(probs.size(), n * vocab, "cross_entropy_backward", "probs");
    detail::expect_size(targets.size(), n, "cross_entropy_backward", "targets");
    detail::expect_size(dlogits.size(), n * vocab, "cross_entropy_backward", "dlogits");
    if (n == 0) return;
    const float f = scale / static_cast<float>(n);
    for (std::size_t r = 0; r < n; ++r)
        detail::cross_entropy_row_backward(probs.data() + r * vocab,
                                           detail::token_row(targets[r], vocab, "cross_entropy_backward"), f,
                                           dlogits.data() + r * vocab, vocab);
}

}  // namespace dtfm::nn
