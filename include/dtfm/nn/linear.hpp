// nn::linear: the affine layer y = x·W + b over n rows, W stored [in × out] row-major (GPT-2's
// Conv1D layout), and its backward dx = dy·Wᵀ, dW += xᵀ·dy, db += Σ_rows dy.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>

#include "dtfm/nn/detail/shape.hpp"
#include "dtfm/nn/gemm.hpp"

namespace dtfm::nn {

// y[n × out] = x[n × in]·w[in × out] + b[out]; b may be empty (no bias).
inline void linear_forward(std::span<const float> x, std::span<const float> w, std::span<const float> b, std::span<float> y,
                           std::size_t n, std::size_t in, std::size_t out) {
    detail::expect_size(x.size(), n * in, "linear_forward", "x");
    detail::expect_size(w.size(), in * out, "linear_forward", "w");
    if (!b.empty()) detail::expect_size(b.size(), out, "linear_forward", "b");
    detail::expect_size(y.size(), n * out, "linear_forward", "y");
    float beta = 0.0f;
    if (!b.empty()) {
        for (std::size_t r = 0; r < n; ++r) std::copy(b.begin(), b.end(), y.begin() + static_cast<std::ptrdiff_t>(r * out));
        beta = 1.0f;
    }
    gemm(transpose::no, transpose::no, n, out, in, 1.0f, x.data(), in, w.data(), out, beta, y.data(), out);
}

// From dy[n × out]: dx = dy·wᵀ (overwritten; skipped when dx is empty), dw += xᵀ·dy and
// db += Σ_rows dy (accumulated; db may be empty when the layer has no bias).
inline void linear_backward(std::span<const float> x, std::span<const float> w, std::span<const float> dy, std::span<float> dx,
                            std::span<float> dw, std::span<float> db, std::size_t n, std::size_t in, std::size_t out) {
    detail::expect_size(x.size(), n * in, "linear_backward", "x");
    detail::expect_size(w.size(), in * out, "linear_backward", "w");
    detail::expect_size(dy.size(), n * out, "linear_backward", "dy");
    detail::expect_size(dw.size(), in * out, "linear_backward", "dw");
    if (!dx.empty()) {
        detail::expect_size(dx.size(), n * in, "linear_backward", "dx");
        gemm(transpose::no, transpose::yes, n, in, out, 1.0f, dy.data(), out, w.data(), out, 0.0f, dx.data(), in);
    }
    gemm(transpose::yes, transpose::no, in, out, n, 1.0f, x.data(), in, dy.data(), out, 1.0f, dw.data(), out);
    if (!db.empty()) {
        detail::expect_size(db.size(), out, "linear_backward", "db");
        for (std::size_t r = 0; r < n; ++r)
            for (std::size_t j = 0; j < out; ++j) db[j] += dy[r * out + j];
    }
}

}  // namespace dtfm::nn
