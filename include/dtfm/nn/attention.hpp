// nn::causal_attention: the core of multi-head causal self-attention (Vaswani et al. 2017,
// GPT-2's masked form): per head, P = softmax(QKᵀ/√d_h + M) with M masking j > i, O = P·V.
// Q, K and V come packed as one [rows × 3C] matrix (the output of one qkv projection), head h in
// columns [h·d_h, (h+1)·d_h) of each third; O is [rows × C]. Forward keeps P (batch·heads·T²);
// backward: dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(P ⊙ dP)), dQ = dS·K/√d_h, dK = dSᵀ·Q/√d_h.
#pragma once

#include <cmath>
#include <cstddef>
#include <span>

#include "dtfm/nn/attention_shape.hpp"
#include "dtfm/nn/causal_softmax.hpp"
#include "dtfm/nn/detail/shape.hpp"
#include "dtfm/nn/gemm.hpp"

namespace dtfm::nn {

// out = attention(qkv), probs = P (masked entries 0).
inline void causal_attention_forward(std::span<const float> qkv, std::span<float> out, std::span<float> probs,
                                     const attention_shape& s) {
    const std::size_t T = s.seq, C = s.d_model, hd = s.head_dim();
    if (s.heads == 0 || C % s.heads != 0) throw error("nn::causal_attention_forward: d_model must be a multiple of heads");
    detail::expect_size(qkv.size(), s.rows() * 3 * C, "causal_attention_forward", "qkv");
    detail::expect_size(out.size(), s.rows() * C, "causal_attention_forward", "out");
    detail::expect_size(probs.size(), s.probs_size(), "causal_attention_forward", "probs");
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    for (std::size_t b = 0; b < s.batch; ++b) {
        for (std::size_t h = 0; h < s.heads; ++h) {
            const float* q = qkv.data() + b * T * 3 * C + h * hd;
            const float* k = q + C;
            const float* v = q + 2 * C;
            float* p = probs.data() + (b * s.heads + h) * T * T;
            gemm(transpose::no, transpose::yes, T, T, hd, scale, q, 3 * C, k, 3 * C, 0.0f, p, T);
            for (std::size_t i = 0; i < T; ++i) detail::causal_softmax_row(p + i * T, i, T);
            gemm(transpose::no, transpose::no, T, hd, T, 1.0f, p, T, v, 3 * C, 0.0f, out.data() + b * T * C + h * hd, C);
        }
    }
}

// dqkv (overwritten) from dout; scratch holds T² floats.
inline void causal_attention_backward(std::span<const float> qkv, std::span<const float> probs, std::span<const float> dout,
                                      std::span<float> dqkv, std::span<float> scratch, const attention_shape& s) {
    const std::size_t T = s.seq, C = s.d_model, hd = s.head_dim();
    detail::expect_size(qkv.size(), s.rows() * 3 * C, "causal_attention_backward", "qkv");
    detail::expect_size(probs.size(), s.probs_size(), "causal_attention_backward", "probs");
    detail::expect_size(dout.size(), s.rows() * C, "causal_attention_backward", "dout");
    detail::expect_size(dqkv.size(), s.rows() * 3 * C, "causal_attention_backward", "dqkv");
    detail::expect_size(scratch.size(), T * T, "causal_attention_backward", "scratch");
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    float* dp = scratch.data();
    for (std::size_t b = 0; b < s.batch; ++b) {
        for (std::size_t h = 0; h < s.heads; ++h) {
            const std::size_t base = b * T * 3 * C + h * hd;
            const float* q = qkv.data() + base;
            const float* k = q + C;
            const float* v = q + 2 * C;
            float* dq = dqkv.data() + base;
            float* dk = dq + C;
            float* dv = dq + 2 * C;
            const float* p = probs.data() + (b * s.heads + h) * T * T;
            const float* dO = dout.data() + b * T * C + h * hd;
            gemm(transpose::yes, transpose::no, T, hd, T, 1.0f, p, T, dO, C, 0.0f, dv, 3 * C);
            gemm(transpose::no, transpose::yes, T, T, hd, 1.0f, dO, C, v, 3 * C, 0.0f, dp, T);
            for (std::size_t i = 0; i < T; ++i) detail::causal_softmax_backward_row(p + i * T, dp + i * T, i, T, scale);
            gemm(transpose::no, transpose::no, T, hd, T, 1.0f, dp, T, k, 3 * C, 0.0f, dq, 3 * C);
            gemm(transpose::yes, transpose::no, T, hd, T, 1.0f, dp, T, q, 3 * C, 0.0f, dk, 3 * C);
        }
    }
}

}  // namespace dtfm::nn
