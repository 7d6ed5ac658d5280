// nn::layer_norm (Ba, Kiros & Hinton 2016) over the last dimension c of n rows:
// y = γ·x̂ + β with x̂ = (x − μ)·r, r = 1/√(σ² + ε) (biased variance). Forward keeps μ and r per
// row; backward dx = r·(g − mean(g) − x̂·mean(g·x̂)) with g = γ·dy. The row and column kernels
// (detail::) are shared with the CUDA stage, which runs one row or one column per thread.
#pragma once

#include <cmath>
#include <cstddef>
#include <span>

#include "dtfm/config.hpp"
#include "dtfm/nn/detail/math.hpp"
#include "dtfm/nn/detail/shape.hpp"

namespace dtfm::nn {

inline constexpr float layer_norm_epsilon = 1e-5f;

namespace detail {

DTFM_HOST_DEVICE float layer_norm_xhat(float x, float mean, float rstd) { return (x - mean) * rstd; }

// One row: y = γ·x̂ + β, and the row's μ and r (sums in double, as the host always did).
DTFM_HOST_DEVICE void layer_norm_row(const float* x, const float* gamma, const float* beta, float* y, float& mean, float& rstd,
                                     std::size_t c) {
    double s = 0.0;
    for (std::size_t i = 0; i < c; ++i) s += x[i];
    const float m = static_cast<float>(s / static_cast<double>(c));
    double v = 0.0;
    for (std::size_t i = 0; i < c; ++i) {
        const float d = x[i] - m;
        v += static_cast<double>(d) * d;
    }
    const float rs = static_cast<float>(1.0 / detail::sqrt(v / static_cast<double>(c) + layer_norm_epsilon));
    for (std::size_t i = 0; i < c; ++i) y[i] = layer_norm_xhat(x[i], m, rs) * gamma[i] + beta[i];
    mean = m;
    rstd = rs;
}

// One row of the input gradient, added into dx.
DTFM_HOST_DEVICE void layer_norm_row_backward(const float* x, const float* gamma, float mean, float rstd, const float* dy,
                                              float* dx, std::size_t c) {
    float sum_g = 0.0f, sum_gx = 0.0f;
    for (std::size_t i = 0; i < c; ++i) {
        const float g = gamma[i] * dy[i];
        sum_g += g;
        sum_gx += g * layer_norm_xhat(x[i], mean, rstd);
    }
    const float mg = sum_g / static_cast<float>(c), mgx = sum_gx / static_cast<float>(c);
    for (std::size_t i = 0; i < c; ++i) dx[i] += rstd * (gamma[i] * dy[i] - mg - layer_norm_xhat(x[i], mean, rstd) * mgx);
}

// Column i of the parameter gradients over n rows (in row order, as the host loop adds them):
// dγ[i] += Σ_r dy·x̂, dβ[i] += Σ_r dy.
DTFM_HOST_DEVICE void layer_norm_parameter_column(std::size_t i, const float* x, const float* mean, const float* rstd,
                                                  const float* dy, float* dgamma, float* dbeta, std::size_t n,
                                                  std::size_t c) {
    float g = dgamma[i], b = dbeta[i];
    for (std::size_t r = 0; r < n; ++r) {
        const float d = dy[r * c + i];
        g += d * layer_norm_xhat(x[r * c + i], mean[r], rstd[r]);
        b += d;
    }
    dgamma[i] = g;
    dbeta[i] = b;
}

}  // namespace detail

// y, mean and rstd are written; mean and rstd hold n values, what backward needs beside x.
inline void layer_norm_forward(std::span<const float> x, std::span<const float> gamma, std::span<const float> beta,
                               std::span<float> y, std::span<float> mean, std::span<float> rstd, std::size_t n, std::size_t c) {
    detail::expect_size(x.size(), n * c, "layer_norm_forward", "x");
    detail::expect_size(gamma.size(), c, "layer_norm_forward", "gamma");
    detail::expect_size(beta.size(), c, "layer_norm_forward", "beta");
    detail::expect_size(y.size(), n * c, "layer_norm_forward", "y");
    detail::expect_size(mean.size(), n, "layer_norm_forward", "mean");
    detail::expect_size(rstd.size(), n, "layer_norm_forward", "rstd");
    for (std::size_t r = 0; r < n; ++r)
        detail::layer_norm_row(x.data() + r * c, gamma.data(), beta.data(), y.data() + r * c, mean[r], rstd[r], c);
}

// dx += the input gradient (accumulated, so a residual branch can add into the same buffer);
// dgamma += Σ dy·x̂ and dbeta += Σ dy.
inline void layer_norm_backward(std::span<const float> x, std::span<const float> gamma, std::span<const float> mean,
                                std::span<const float> rstd, std::span<const float> dy, std::span<float> dx,
                                std::span<float> dgamma, std::span<float> dbeta, std::size_t n, std::size_t c) {
    detail::expect_size(x.size(), n * c, "layer_norm_backward", "x");
    detail::expect_size(gamma.size(), c, "layer_norm_backward", "gamma");
    detail::expect_size(mean.size(), n, "layer_norm_backward", "mean");
    detail::expect_size(rstd.size(), n, "layer_norm_backward", "rstd");
    detail::expect_size(dy.size(), n * c, "layer_norm_backward", "dy");
    detail::expect_size(dx.size(), n * c, "layer_norm_backward", "dx");
    detail::expect_size(dgamma.size(), c, "layer_norm_backward", "dgamma");
    detail::expect_size(dbeta.size(), c, "layer_norm_backward", "dbeta");
    for (std::size_t r = 0; r < n; ++r) {
        const float* xr = x.data() + r * c;
        const float* dyr = dy.data() + r * c;
        for (std::size_t i = 0; i < c; ++i) {
            const float xh = detail::layer_norm_xhat(xr[i], mean[r], rstd[r]);
            dgamma[i] += dyr[i] * xh;
            dbeta[i] += dyr[i];
        }
        detail::layer_norm_row_backward(xr, gamma.data(), mean[r], rstd[r], dyr, dx.data() + r * c, c);
    }
}

}  // namespace dtfm::nn
