// nn::detail::causal_softmax_row and its backward: one row of causal attention's probabilities,
// P[i, j] = softmax_j(S[i, j]) over j ≤ i, 0 for j > i (the mask), and the row of the scores'
// gradient dS[i, j] = scale·P[i, j]·(dP[i, j] − Σ_k P[i, k]·dP[i, k]). Shared by the host attention
// (attention.hpp) and the CUDA stage, which runs one row per thread.
#pragma once

#include <cstddef>

#include "dtfm/config.hpp"
#include "dtfm/nn/detail/math.hpp"

namespace dtfm::nn::detail {

// row holds S[i, 0..T) and receives P[i, 0..T).
DTFM_HOST_DEVICE void causal_softmax_row(float* row, std::size_t i, std::size_t T) {
    float mx = row[0];
    for (std::size_t j = 1; j <= i; ++j)
        if (mx < row[j]) mx = row[j];
    float sum = 0.0f;
    for (std::size_t j = 0; j <= i; ++j) {
        row[j] = detail::exp(row[j] - mx);
        sum += row[j];
    }
    const float inv = 1.0f / sum;
    for (std::size_t j = 0; j <= i; ++j) row[j] *= inv;
    for (std::size_t j = i + 1; j < T; ++j) row[j] = 0.0f;
}

// p is P[i, ·]; d holds dP[i, ·] and receives dS[i, ·].
DTFM_HOST_DEVICE void causal_softmax_backward_row(const float* p, float* d, std::size_t i, std::size_t T, float scale) {
    float dot = 0.0f;
    for (std::size_t j = 0; j <= i; ++j) dot += p[j] * d[j];
    for (std::size_t j = 0; j <= i; ++j) d[j] = scale * p[j] * (d[j] - dot);
    for (std::size_t j = i + 1; j < T; ++j) d[j] = 0.0f;
}

}  // namespace dtfm::nn::detail
