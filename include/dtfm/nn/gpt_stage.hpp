// nn::gpt_stage: stage s of S of a GPT (gpt_config) as a pipeline runs it, a dtfm::concepts::stage
// on the host. What it holds and where is its gpt_layout: a contiguous, balanced range of blocks;
// stage 0 also the token and position embeddings, the last stage the final LayerNorm, the untied
// head and the cross-entropy. Parameters and gradients are one flat buffer each, so a
// data-parallel collective reduces a stage's gradients in one call.
//
// Use, per step: zero_gradients(); for each micro-batch m: feed(m, tokens, targets); forward(m, …)
// with the previous stage's output; later backward(m, …) with the next stage's input gradient.
// forward keeps its activations in slot m % slots: at most `slots` micro-batches may be between
// forward and backward at once (backward of a micro-batch whose slot was reused throws).
// The last stage outputs the micro-batch's mean token loss; its backward takes
// grad_out[0] = dObjective/dLoss (1/M when the objective is the mean over M micro-batches).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dtfm/concepts/stage.hpp"
#include "dtfm/error.hpp"
#include "dtfm/nn/activation_slots.hpp"
#include "dtfm/nn/cross_entropy.hpp"
#include "dtfm/nn/embedding.hpp"
#include "dtfm/nn/gpt_config.hpp"
#include "dtfm/nn/gpt_layout.hpp"
#include "dtfm/nn/layer_norm.hpp"
#include "dtfm/nn/linear.hpp"
#include "dtfm/nn/transformer_block.hpp"

namespace dtfm::nn {

class gpt_stage {
public:
    using stage_concept = stage_tag;
    using memory_space = host_space;
    using value_type = float;
    using input_type = float;
    using output_type = float;

    using layer_range = gpt_layout::layer_range;
    static layer_range layers_of(const gpt_config& c, int stage, int stages) { return gpt_layout::layers_of(c, stage, stages); }

    gpt_stage(const gpt_config& c, int stage, int stages, int micro_batch, int slots)
        : layout_(c, stage, stages), batch_(static_cast<std::size_t>(positive(micro_batch))),
          shape_{batch_, c.context, c.d_model, c.heads}, block_(shape_), params_(layout_.size()), grads_(layout_.size()),
          slots_(slots, "nn::gpt_stage", [this] { return std::make_unique<activations>(*this); }) {
        const std::size_t C = c.d_model, V = c.vocab;
        layout_.initialise(params_);
        d_res_.resize(rows() * C);
        d_tmp_.resize(rows() * C);
        if (last()) d_logits_.resize(rows() * V);
    }

    bool first() const noexcept { return layout_.first(); }
    bool last() const noexcept { return layout_.last(); }
    int stage() const noexcept { return layout_.stage(); }
    int stages() const noexcept { return layout_.stages(); }
    int micro_batch() const noexcept { return static_cast<int>(batch_); }
    int slots() const noexcept { return slots_.count(); }
    const gpt_config& config() const noexcept { return layout_.config(); }
    layer_range layers() const noexcept { return layout_.layers(); }
    // What this stage holds and where (shared with cuda::gpt_stage).
    const gpt_layout& stage_layout() const noexcept { return layout_; }

    // Floats forward reads: 0 on the first stage (its input is the tokens given to feed).
    std::size_t input_size() const noexcept { return first() ? 0 : rows() * config().d_model; }
    // Floats forward writes: 1 on the last stage (the mean loss), else the activations.
    std::size_t output_size() const noexcept { return last() ? 1 : rows() * config().d_model; }

    // Gives micro-batch m's tokens and targets (micro_batch·context ids each, targets[i] the id
    // that should follow tokens[i]); the first stage keeps the tokens, the last the targets. Feed
    // may run any number of micro-batches ahead: ids are kept per micro-batch number until fed again.
    void feed(int microbatch, std::span<const std::int32_t> tokens, std::span<const std::int32_t> targets) {
        const std::size_t m = slots_.number(microbatch, "feed");
        detail::expect_size(tokens.size(), rows(), "gpt_stage::feed", "tokens");
        detail::expect_size(targets.size(), rows(), "gpt_stage::feed", "targets");
        if (first()) keep(tokens_, m, tokens);
        if (last()) keep(targets_, m, targets);
    }

    // Runs the micro-batch through this stage, keeping what backward needs in slot m % slots.
    void forward(int microbatch, std::span<const float> in, std::span<float> out) {
        activations& a = slots_.training(microbatch);
        run(microbatch, in, out, a);
        a.microbatch = microbatch;
    }

    // Forward for evaluation: the same output as forward, keeping nothing (it runs in a slot of
    // its own, allocated on first use, so no micro-batch's activations are disturbed).
    void evaluate(int microbatch, std::span<const float> in, std::span<float> out) {
        run(microbatch, in, out, slots_.evaluation(microbatch, [this] { return std::make_unique<activations>(*this); }));
    }

    // Backward of a micro-batch forward ran: accumulates into gradients() and writes grad_in (the
    // gradient of forward's input; empty on the first stage). On the last stage grad_out holds one
    // float, dObjective/dLoss; elsewhere the gradient of this stage's output.
    void backward(int microbatch, std::span<const float> grad_out, std::span<float> grad_in) {
        activations& a = slots_.held(microbatch);
        const auto m = static_cast<std::size_t>(microbatch);
        const std::size_t n = rows(), C = config().d_model, V = config().vocab;
        detail::expect_size(grad_out.size(), output_size(), "gpt_stage::backward", "grad_out");
        detail::expect_size(grad_in.size(), input_size(), "gpt_stage::backward", "grad_in");
        const std::span<float> P(params_), G(grads_);
        if (last()) {
            cross_entropy_backward(a.probs, fed(targets_, m), grad_out[0], d_logits_, n, V);
            linear_backward(a.lnf_out, head().of(P), d_logits_, d_tmp_, head().of(G), {}, n, C, V);
            std::fill(d_res_.begin(), d_res_.end(), 0.0f);
            layer_norm_backward(a.resid_at(blocks()), final_gamma().of(P), a.lnf_mean, a.lnf_rstd, d_tmp_, d_res_,
                                final_gamma().of(G), final_beta().of(G), n, C);
        } else {
            std::copy(grad_out.begin(), grad_out.end(), d_res_.begin());
        }
        for (std::size_t b = blocks(); b-- > 0;) {
            block_.backward(block_params(P, b), block_params(G, b), a.resid_at(b), a.blocks[b], d_res_, d_tmp_);
            std::swap(d_res_, d_tmp_);
        }
        if (first())
            embedding_backward(fed(tokens_, m), d_res_, token_embedding().of(G), position_embedding().of(G), embedding());
        else
            std::copy(d_res_.begin(), d_res_.end(), grad_in.begin());
        a.microbatch = -1;
    }

    std::span<float> parameters() noexcept { return params_; }
    std::span<float> gradients() noexcept { return grads_; }
    std::span<const float> parameters() const noexcept { return params_; }
    std::span<const float> gradients() const noexcept { return grads_; }
    void zero_gradients() noexcept { std::fill(grads_.begin(), grads_.end(), 0.0f); }

    // Where each tensor sits in parameters() (and gradients()); empty slices where the stage
    // does not hold the tensor.
    tensor_slice token_embedding() const noexcept { return layout_.token_embedding(); }
    tensor_slice position_embedding() const noexcept { return layout_.position_embedding(); }
    tensor_slice final_gamma() const noexcept { return layout_.final_gamma(); }
    tensor_slice final_beta() const noexcept { return layout_.final_beta(); }
    tensor_slice head() const noexcept { return layout_.head(); }
    // Block b of this stage (model layer layers().begin + b).
    tensor_slice block(std::size_t b) const noexcept { return layout_.block(b); }
    const block_layout& layout() const noexcept { return block_.layout(); }

private:
    struct activations {
        int microbatch = -1;              // whose activations these are; -1 when none
        std::vector<float> resid;         // the residual stream entering each block, and leaving the last
        std::vector<block_cache> blocks;  // per block
        std::vector<float> lnf_mean, lnf_rstd, lnf_out, probs;  // last stage only

        explicit activations(const gpt_stage& s) : resid((s.blocks() + 1) * s.rows() * s.config().d_model) {
            blocks.reserve(s.blocks());
            for (std::size_t b = 0; b < s.blocks(); ++b) blocks.emplace_back(s.shape_);
            if (s.last()) {
                lnf_mean.resize(s.rows());
                lnf_rstd.resize(s.rows());
                lnf_out.resize(s.rows() * s.config().d_model);
                probs.resize(s.rows() * s.config().vocab);
            }
        }
        std::span<float> resid_at(std::size_t b) {
            const std::size_t n = resid.size() / (blocks.size() + 1);
            return std::span<float>(resid).subspan(b * n, n);
        }
    };

    static int positive(int micro_batch) {
        if (micro_batch < 1) throw config_error("nn::gpt_stage: micro_batch must be at least 1");
        return micro_batch;
    }
    static void keep(std::vector<std::vector<std::int32_t>>& store, std::size_t m, std::span<const std::int32_t> ids) {
        if (store.size() <= m) store.resize(m + 1);
        store[m].assign(ids.begin(), ids.end());
    }
    static const std::vector<std::int32_t>& fed(const std::vector<std::vector<std::int32_t>>& store, std::size_t m) {
        return fed_ids(store, m, "nn::gpt_stage");
    }
    std::size_t rows() const noexcept { return batch_ * config().context; }
    std::size_t blocks() const noexcept { return layout_.blocks(); }
    embedding_shape embedding() const noexcept { return {batch_, config().context, config().vocab, config().d_model}; }
    template <class T>
    std::span<T> block_params(std::span<T> all, std::size_t b) const {
        return block(b).of(all);
    }

    void run(int microbatch, std::span<const float> in, std::span<float> out, activations& a) {
        const auto m = static_cast<std::size_t>(microbatch);
        const std::size_t n = rows(), C = config().d_model, V = config().vocab;
        detail::expect_size(in.size(), input_size(), "gpt_stage::forward", "in");
        detail::expect_size(out.size(), output_size(), "gpt_stage::forward", "out");
        const std::span<const float> P(params_);
        a.microbatch = -1;
        if (first())
            embedding_forward(fed(tokens_, m), token_embedding().of(P), position_embedding().of(P), a.resid_at(0), embedding());
        else
            std::copy(in.begin(), in.end(), a.resid_at(0).begin());
        for (std::size_t b = 0; b < blocks(); ++b) block_.forward(block_params(P, b), a.resid_at(b), a.resid_at(b + 1), a.blocks[b]);
        if (last()) {
            layer_norm_forward(a.resid_at(blocks()), final_gamma().of(P), final_beta().of(P), a.lnf_out, a.lnf_mean, a.lnf_rstd, n, C);
            linear_forward(a.lnf_out, head().of(P), {}, a.probs, n, C, V);
            out[0] = cross_entropy_forward(a.probs, fed(targets_, m), a.probs, n, V);
        } else {
            const std::span<const float> y = a.resid_at(blocks());
            std::copy(y.begin(), y.end(), out.begin());
        }
    }

    gpt_layout layout_;
    std::size_t batch_;
    block_shape shape_;
    transformer_block block_;
    std::vector<float> params_, grads_;
    activation_slots<activations> slots_;  // after everything activations' constructor reads
    std::vector<std::vector<std::int32_t>> tokens_, targets_;
    std::vector<float> d_res_, d_tmp_, d_logits_;
};

static_assert(concepts::stage<gpt_stage>);

}  // namespace dtfm::nn
