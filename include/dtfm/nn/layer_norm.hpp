// nn::layer_norm (Ba, Kiros & Hinton 2016) over the last dimension c of n rows:
// y = γ·x̂ + β with x̂ = (x − μ)·r, r = 1/√(σ² + ε) (biased variance). Forward keeps μ and r per
// row; backward dx = r·(g − mean(g) − x̂·mean(g·x̂)) with g = γ·dy.
#pragma once

#include <cmath>
#include <cstddef>
#include <span>

#include "dtfm/nn/detail/shape.hpp"

namespace dtfm::nn {

inline constexpr float layer_norm_epsilon = 1e-5f;

// y, mean and rstd are written; mean and rstd hold n values, what backward needs beside x.
inline void layer_norm_forward(std::span<const float> x, std::span<const float> gamma, std::span<const float> beta,
                               std::span<float> y, std::span<float> mean, std::span<float> rstd, std::size_t n, std::size_t c) {
    detail::expect_size(x.size(), n * c, "layer_norm_forward", "x");
    detail::expect_size(gamma.size(), c, "layer_norm_forward", "gamma");
    detail::expect_size(beta.size(), c, "layer_norm_forward", "beta");
    detail::expect_size(y.size(), n * c, "layer_norm_forward", "y");
    detail::expect_size(mean.size(), n, "layer_norm_forward", "mean");
    detail::expect_size(rstd.size(), n, "layer_norm_forward", "rstd");
    for (std::size_t r = 0; r < n; ++r) {
        const float* xr = x.data() + r * c;
        float* yr = y.data() + r * c;
        double s = 0.0;
        for (std::size_t i = 0; i < c; ++i) s += xr[i];
        const float m = static_cast<float>(s / static_cast<double>(c));
        double v = 0.0;
        for (std::size_t i = 0; i < c; ++i) {
            const float d = xr[i] - m;
            v += static_cast<double>(d) * d;
        }
        const float rs = static_cast<float>(1.0 / std::sqrt(v / static_cast<double>(c) + layer_norm_epsilon));
        for (std::size_t i = 0; i < c; ++i) yr[i] = (xr[i] - m) * rs * gamma[i] + beta[i];
        mean[r] = m;
        rstd[r] = rs;
    }
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
        float* dxr = dx.data() + r * c;
        const float m = mean[r], rs = rstd[r];
        float sum_g = 0.0f, sum_gx = 0.0f;
        for (std::size_t i = 0; i < c; ++i) {
            const float xh = (xr[i] - m) * rs;
            const float g = gamma[i] * dyr[i];
            sum_g += g;
            sum_gx += g * xh;
            dgamma[i] += dyr[i] * xh;
            dbeta[i] += dyr[i];
        }
        const float mg = sum_g / static_cast<float>(c), mgx = sum_gx / static_cast<float>(c);
        for (std::size_t i = 0; i < c; ++i) {
            const float xh = (xr[i] - m) * rs;
            dxr[i] += rs * (gamma[i] * dyr[i] - mg - xh * mgx);
        }
    }
}

}  // namespace dtfm::nn
