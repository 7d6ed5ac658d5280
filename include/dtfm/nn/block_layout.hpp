// nn::block_layout: where each tensor of a GPT-2 decoder block sits in the block's flat slice of
// parameters (and gradients), the block's activation shape, and GPT-2's initialisation of a block.
// Shared by the host block (transformer_block.hpp) and the CUDA stage (cuda/gpt_stage.cuh), so
// both hold the same parameters in the same order.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

#include "dtfm/nn/attention_shape.hpp"
#include "dtfm/nn/detail/shape.hpp"
#include "dtfm/nn/init.hpp"

namespace dtfm::nn {

// Where one tensor sits in a flat buffer.
struct tensor_slice {
    std::size_t offset = 0;
    std::size_t size = 0;
    template <class T>
    std::span<T> of(std::span<T> all) const {
        return all.subspan(offset, size);
    }
};

// A block's tensors in GPT-2's order; weights are [in × out] row-major.
struct block_layout {
    tensor_slice ln1_gamma, ln1_beta, qkv_weight, qkv_bias, proj_weight, proj_bias;
    tensor_slice ln2_gamma, ln2_beta, fc_weight, fc_bias, out_weight, out_bias;
    std::size_t size = 0;  // 12C² + 13C

    explicit block_layout(std::size_t d) {
        auto next = [&](std::size_t n) {
            const tensor_slice s{size, n};
            size += n;
            return s;
        };
        ln1_gamma = next(d);
        ln1_beta = next(d);
        qkv_weight = next(d * 3 * d);
        qkv_bias = next(3 * d);
        proj_weight = next(d * d);
        proj_bias = next(d);
        ln2_gamma = next(d);
        ln2_beta = next(d);
        fc_weight = next(d * 4 * d);
        fc_bias = next(4 * d);
        out_weight = next(4 * d * d);
        out_bias = next(d);
    }
};

// GPT-2's initialisation of block `layer` of a `layers`-block model: weights N(0, 0.02²), the two
// projections into the residual stream N(0, (0.02/√(2·layers))²), LayerNorm γ = 1, β and biases 0.
inline void init_block(std::span<float> p, std::size_t d, std::uint64_t seed, std::size_t layer, std::size_t layers) {
    const block_layout l(d);
    detail::expect_size(p.size(), l.size, "init_block", "parameters");
    std::fill(p.begin(), p.end(), 0.0f);
    std::fill_n(l.ln1_gamma.of(p).begin(), d, 1.0f);
    std::fill_n(l.ln2_gamma.of(p).begin(), d, 1.0f);
    const double residual = 0.02 / std::sqrt(2.0 * static_cast<double>(layers));
    fill_normal(l.qkv_weight.of(p), 0.02, parameter_key(seed, layer, gpt_tensor::qkv_weight));
    fill_normal(l.proj_weight.of(p), residual, parameter_key(seed, layer, gpt_tensor::proj_weight));
    fill_normal(l.fc_weight.of(p), 0.02, parameter_key(seed, layer, gpt_tensor::fc_weight));
    fill_normal(l.out_weight.of(p), residual, parameter_key(seed, layer, gpt_tensor::out_weight));
}

struct block_shape {
    std::size_t batch = 1;    // sequences
    std::size_t seq = 1;      // tokens per sequence
    std::size_t d_model = 1;  // C
    std::size_t heads = 1;    // H
    std::size_t rows() const noexcept { return batch * seq; }
    attention_shape attention() const noexcept { return {batch, seq, heads, d_model}; }
};

}  // namespace dtfm::nn
