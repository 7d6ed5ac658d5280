// nn::transformer_block: GPT-2's pre-LayerNorm decoder block,
//   h = x + proj(attention(qkv(LN₁(x))))        y = h + out(gelu(fc(LN₂(h))))      (fc: C → 4C)
// over one flat slice of parameters (block_layout), forward keeping a block_cache per micro-batch
// and backward accumulating into the matching slice of gradients.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dtfm/nn/attention.hpp"
#include "dtfm/nn/block_layout.hpp"
#include "dtfm/nn/detail/shape.hpp"
#include "dtfm/nn/gelu.hpp"
#include "dtfm/nn/layer_norm.hpp"
#include "dtfm/nn/linear.hpp"

namespace dtfm::nn {

// What backward needs from one forward: 16·rows·C + batch·H·T² floats.
struct block_cache {
    std::vector<float> ln1_mean, ln1_rstd, ln1_out, qkv, probs, attn, mid, ln2_mean, ln2_rstd, ln2_out, fc, act;

    explicit block_cache(const block_shape& s)
        : ln1_mean(s.rows()), ln1_rstd(s.rows()), ln1_out(s.rows() * s.d_model), qkv(s.rows() * 3 * s.d_model),
          probs(s.attention().probs_size()), attn(s.rows() * s.d_model), mid(s.rows() * s.d_model), ln2_mean(s.rows()),
          ln2_rstd(s.rows()), ln2_out(s.rows() * s.d_model), fc(s.rows() * 4 * s.d_model), act(s.rows() * 4 * s.d_model) {}
};

class transformer_block {
public:
    explicit transformer_block(const block_shape& s)
        : shape_(s), layout_(s.d_model), d_wide_(s.rows() * 4 * s.d_model), d_qkv_(s.rows() * 3 * s.d_model),
          d_a_(s.rows() * s.d_model), d_mid_(s.rows() * s.d_model), scratch_(s.seq * s.seq) {
        if (s.heads == 0 || s.d_model % s.heads != 0)
            throw error("nn::transformer_block: d_model must be a multiple of heads");
    }

    const block_shape& shape() const noexcept { return shape_; }
    const block_layout& layout() const noexcept { return layout_; }

    // y = block(x); x and y are [rows × C] and must not overlap.
    void forward(std::span<const float> p, std::span<const float> x, std::span<float> y, block_cache& c) const {
        const std::size_t n = shape_.rows(), C = shape_.d_model;
        const block_layout& l = layout_;
        detail::expect_size(p.size(), l.size, "transformer_block", "parameters");
        detail::expect_size(x.size(), n * C, "transformer_block", "x");
        detail::expect_size(y.size(), n * C, "transformer_block", "y");
        layer_norm_forward(x, l.ln1_gamma.of(p), l.ln1_beta.of(p), c.ln1_out, c.ln1_mean, c.ln1_rstd, n, C);
        linear_forward(c.ln1_out, l.qkv_weight.of(p), l.qkv_bias.of(p), c.qkv, n, C, 3 * C);
        causal_attention_forward(c.qkv, c.attn, c.probs, shape_.attention());
        linear_forward(c.attn, l.proj_weight.of(p), l.proj_bias.of(p), c.mid, n, C, C);
        for (std::size_t i = 0; i < n * C; ++i) c.mid[i] += x[i];
        layer_norm_forward(c.mid, l.ln2_gamma.of(p), l.ln2_beta.of(p), c.ln2_out, c.ln2_mean, c.ln2_rstd, n, C);
        linear_forward(c.ln2_out, l.fc_weight.of(p), l.fc_bias.of(p), c.fc, n, C, 4 * C);
        gelu_forward(c.fc, c.act);
        linear_forward(c.act, l.out_weight.of(p), l.out_bias.of(p), y, n, 4 * C, C);
        for (std::size_t i = 0; i < n * C; ++i) y[i] += c.mid[i];
    }

    // dx (overwritten) from dy, both [rows × C]; the parameter gradients accumulate into g.
    // x is the input forward saw and c what it kept.
    void backward(std::span<const float> p, std::span<float> g, std::span<const float> x, const block_cache& c,
                  std::span<const float> dy, std::span<float> dx) {
        const std::size_t n = shape_.rows(), C = shape_.d_model;
        const block_layout& l = layout_;
        detail::expect_size(p.size(), l.size, "transformer_block", "parameters");
        detail::expect_size(g.size(), l.size, "transformer_block", "gradients");
        detail::expect_size(dy.size(), n * C, "transformer_block", "dy");
        detail::expect_size(dx.size(), n * C, "transformer_block", "dx");
        // MLP branch: y = mid + out(gelu(fc(LN₂(mid)))).
        linear_backward(c.act, l.out_weight.of(p), dy, d_wide_, l.out_weight.of(g), l.out_bias.of(g), n, 4 * C, C);
        gelu_backward(c.fc, d_wide_, d_wide_);
        linear_backward(c.ln2_out, l.fc_weight.of(p), d_wide_, d_a_, l.fc_weight.of(g), l.fc_bias.of(g), n, C, 4 * C);
        std::copy(dy.begin(), dy.end(), d_mid_.begin());
        layer_norm_backward(c.mid, l.ln2_gamma.of(p), c.ln2_mean, c.ln2_rstd, d_a_, d_mid_, l.ln2_gamma.of(g),
                            l.ln2_beta.of(g), n, C);
        // Attention branch: mid = x + proj(attention(qkv(LN₁(x)))).
        linear_backward(c.attn, l.proj_weight.of(p), d_mid_, d_a_, l.proj_weight.of(g), l.proj_bias.of(g), n, C, C);
        causal_attention_backward(c.qkv, c.probs, d_a_, d_qkv_, scratch_, shape_.attention());
        linear_backward(c.ln1_out, l.qkv_weight.of(p), d_qkv_, d_a_, l.qkv_weight.of(g), l.qkv_bias.of(g), n, C, 3 * C);
        std::copy(d_mid_.begin(), d_mid_.end(), dx.begin());
        layer_norm_backward(x, l.ln1_gamma.of(p), c.ln1_mean, c.ln1_rstd, d_a_, dx, l.ln1_gamma.of(g), l.ln1_beta.of(g), n, C);
    }

private:
    block_shape shape_;
    block_layout layout_;
    std::vector<float> d_wide_, d_qkv_, d_a_, d_mid_, scratch_;  // backward's scratch, sized once
};

}  // namespace dtfm::nn
