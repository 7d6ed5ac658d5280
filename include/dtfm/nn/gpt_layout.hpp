// nn::gpt_layout: what stage s of S of a GPT (gpt_config) holds and where in its flat buffer of
// parameters (and gradients): a contiguous, balanced range of blocks [s·L/S, (s+1)·L/S); stage 0
// also the token and position embeddings, the last stage the final LayerNorm and the untied head,
// in the order (wte, wpe | blocks | γ_f, β_f, W_head), so the stages' buffers concatenated are the
// whole model's. Also GPT-2's initialisation of those parameters, the same values whatever the
// split. Shared by the host stage (gpt_stage.hpp) and the CUDA stage (cuda/gpt_stage.cuh).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "dtfm/error.hpp"
#include "dtfm/nn/block_layout.hpp"
#include "dtfm/nn/detail/shape.hpp"
#include "dtfm/nn/gpt_config.hpp"
#include "dtfm/nn/init.hpp"

namespace dtfm::nn {

class gpt_layout {
public:
    // The blocks [begin, end) that stage `stage` of `stages` holds.
    struct layer_range {
        std::size_t begin = 0, end = 0;
    };
    static layer_range layers_of(const gpt_config& c, int stage, int stages) {
        const auto s = static_cast<std::size_t>(stage), n = static_cast<std::size_t>(stages);
        return {s * c.layers / n, (s + 1) * c.layers / n};
    }

    // Throws config_error for an invalid config or a stage that would hold no block.
    gpt_layout(const gpt_config& c, int stage, int stages)
        : config_(validated(c, stage, stages)), stage_(stage), stages_(stages), layers_(layers_of(c, stage, stages)),
          block_(c.d_model) {
        const std::size_t C = c.d_model, V = c.vocab;
        auto next = [&](std::size_t n) {
            const tensor_slice s{size_, n};
            size_ += n;
            return s;
        };
        if (first()) {
            wte_ = next(V * C);
            wpe_ = next(c.context * C);
        }
        blocks_offset_ = size_;
        size_ += blocks() * block_.size;
        if (last()) {
            lnf_gamma_ = next(C);
            lnf_beta_ = next(C);
            head_ = next(C * V);
        }
    }

    const gpt_config& config() const noexcept { return config_; }
    int stage() const noexcept { return stage_; }
    int stages() const noexcept { return stages_; }
    bool first() const noexcept { return stage_ == 0; }
    bool last() const noexcept { return stage_ == stages_ - 1; }
    layer_range layers() const noexcept { return layers_; }
    std::size_t blocks() const noexcept { return layers_.end - layers_.begin; }
    // Floats in the stage's buffer.
    std::size_t size() const noexcept { return size_; }

    // Where each tensor sits; empty slices where the stage does not hold the tensor.
    tensor_slice token_embedding() const noexcept { return wte_; }
    tensor_slice position_embedding() const noexcept { return wpe_; }
    tensor_slice final_gamma() const noexcept { return lnf_gamma_; }
    tensor_slice final_beta() const noexcept { return lnf_beta_; }
    tensor_slice head() const noexcept { return head_; }
    // Block b of this stage (model layer layers().begin + b), and the tensors inside a block.
    tensor_slice block(std::size_t b) const noexcept { return {blocks_offset_ + b * block_.size, block_.size}; }
    const block_layout& block_tensors() const noexcept { return block_; }

    // GPT-2's initial parameters of this stage, drawn per tensor from config().seed.
    void initialise(std::span<float> p) const {
        detail::expect_size(p.size(), size_, "gpt_layout::initialise", "parameters");
        std::fill(p.begin(), p.end(), 0.0f);
        const std::uint64_t seed = config_.seed;
        if (first()) {
            fill_normal(wte_.of(p), 0.02, parameter_key(seed, 0, gpt_tensor::token_embedding));
            fill_normal(wpe_.of(p), 0.02, parameter_key(seed, 0, gpt_tensor::position_embedding));
        }
        for (std::size_t b = 0; b < blocks(); ++b)
            init_block(block(b).of(p), config_.d_model, seed, layers_.begin + b, config_.layers);
        if (last()) {
            std::fill_n(lnf_gamma_.of(p).begin(), config_.d_model, 1.0f);
            fill_normal(head_.of(p), 0.02, parameter_key(seed, 0, gpt_tensor::head_weight));
        }
    }

private:
    static const gpt_config& validated(const gpt_config& c, int stage, int stages) {
        c.validate();
        if (stages < 1 || stage < 0 || stage >= stages)
            throw config_error("nn::gpt_layout: stage " + std::to_string(stage) + " of " + std::to_string(stages));
        if (static_cast<std::size_t>(stages) > c.layers)
            throw config_error("nn::gpt_layout: " + std::to_string(stages) + " stages for " + std::to_string(c.layers) +
                               " blocks: every stage needs a block");
        return c;
    }

    gpt_config config_;
    int stage_, stages_;
    layer_range layers_;
    block_layout block_;
    std::size_t blocks_offset_ = 0, size_ = 0;
    tensor_slice wte_, wpe_, lnf_gamma_, lnf_beta_, head_;
};

}  // namespace dtfm::nn
