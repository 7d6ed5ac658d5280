// nn::gpt_stage: stage s of S of a GPT (gpt_config) as a pipeline runs it, a dtfm::concepts::stage
// on the host. It holds a contiguous, balanced range of blocks [s·L/S, (s+1)·L/S); stage 0 also
// holds the token and position embeddings, the last stage the final LayerNorm, the untied head
// and the cross-entropy. Parameters and gradients are one flat buffer each, in the order
// (wte, wpe | blocks | γ_f, β_f, W_head), so the stages' buffers concatenated are the whole
// model's, and a data-parallel collective reduces a stage's gradients in one call.
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
#include "dtfm/nn/cross_entropy.hpp"
#include "dtfm/nn/embedding.hpp"
#include "dtfm/nn/gpt_config.hpp"
#include "dtfm/nn/init.hpp"
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

    // The blocks [begin, end) that stage `stage` of `stages` holds.
    struct layer_range {
        std::size_t begin = 0, end = 0;
    };
    static layer_range layers_of(const gpt_config& c, int stage, int stages) {
        const auto s = static_cast<std::size_t>(stage), n = static_cast<std::size_t>(stages);
        return {s * c.layers / n, (s + 1) * c.layers / n};
    }

    gpt_stage(const gpt_config& c, int stage, int stages, int micro_batch, int slots)
        : config_(c), stage_(stage), stages_(stages), batch_(static_cast<std::size_t>(positive(micro_batch, "micro_batch"))),
          slots_(positive(slots, "slots")),
          shape_{batch_, c.context, c.d_model, c.heads}, block_(valid(c, stage, stages, shape_)) {
        const layer_range r = layers_of(c, stage, stages);
        first_layer_ = r.begin;
        blocks_ = r.end - r.begin;
        const std::size_t C = c.d_model, V = c.vocab;
        std::size_t n = 0;
        if (first()) {
            wte_ = {n, V * C};
            n += V * C;
            wpe_ = {n, c.context * C};
            n += c.context * C;
        }
        blocks_offset_ = n;
        n += blocks_ * block_.layout().size;
        if (last()) {
            lnf_gamma_ = {n, C};
            n += C;
            lnf_beta_ = {n, C};
            n += C;
            head_ = {n, C * V};
            n += C * V;
        }
        params_.assign(n, 0.0f);
        grads_.assign(n, 0.0f);
        initialise();
        slot_.reserve(static_cast<std::size_t>(slots_) + 1);
        for (int i = 0; i < slots_; ++i) slot_.push_back(std::make_unique<activations>(*this));
        d_res_.resize(rows() * C);
        d_tmp_.resize(rows() * C);
        if (last()) d_logits_.resize(rows() * V);
    }

    bool first() const noexcept { return stage_ == 0; }
    bool last() const noexcept { return stage_ == stages_ - 1; }
    int stage() const noexcept { return stage_; }
    int stages() const noexcept { return stages_; }
    int micro_batch() const noexcept { return static_cast<int>(batch_); }
    int slots() const noexcept { return slots_; }
    const gpt_config& config() const noexcept { return config_; }
    layer_range layers() const noexcept { return {first_layer_, first_layer_ + blocks_}; }

    // Floats forward reads: 0 on the first stage (its input is the tokens given to feed).
    std::size_t input_size() const noexcept { return first() ? 0 : rows() * config_.d_model; }
    // Floats forward writes: 1 on the last stage (the mean loss), else the activations.
    std::size_t output_size() const noexcept { return last() ? 1 : rows() * config_.d_model; }

    // Gives micro-batch m's tokens and targets (micro_batch·context ids each, targets[i] the id
    // that should follow tokens[i]); the first stage keeps the tokens, the last the targets. Feed
    // may run any number of micro-batches ahead: ids are kept per micro-batch number until fed again.
    void feed(int microbatch, std::span<const std::int32_t> tokens, std::span<const std::int32_t> targets) {
        const std::size_t m = index(microbatch, "feed");
        detail::expect_size(tokens.size(), rows(), "gpt_stage::feed", "tokens");
        detail::expect_size(targets.size(), rows(), "gpt_stage::feed", "targets");
        if (first()) keep(tokens_, m, tokens);
        if (last()) keep(targets_, m, targets);
    }

    // Runs the micro-batch through this stage, keeping what backward needs in slot m % slots.
    void forward(int microbatch, std::span<const float> in, std::span<float> out) {
        activations& a = *slot_[index(microbatch, "forward") % static_cast<std::size_t>(slots_)];
        run(microbatch, in, out, a);
        a.microbatch = microbatch;
    }

    // Forward for evaluation: the same output as forward, keeping nothing (it runs in a slot of
    // its own, allocated on first use, so no micro-batch's activations are disturbed).
    void evaluate(int microbatch, std::span<const float> in, std::span<float> out) {
        index(microbatch, "evaluate");
        if (slot_.size() == static_cast<std::size_t>(slots_)) slot_.push_back(std::make_unique<activations>(*this));
        run(microbatch, in, out, *slot_.back());
    }

    // Backward of a micro-batch forward ran: accumulates into gradients() and writes grad_in (the
    // gradient of forward's input; empty on the first stage). On the last stage grad_out holds one
    // float, dObjective/dLoss; elsewhere the gradient of this stage's output.
    void backward(int microbatch, std::span<const float> grad_out, std::span<float> grad_in) {
        const std::size_t m = index(microbatch, "backward");
        activations& a = *slot_[m % static_cast<std::size_t>(slots_)];
        if (a.microbatch != microbatch)
            throw error("nn::gpt_stage::backward: the activations of micro-batch " + std::to_string(microbatch) +
                        " are not held (never forwarded, or slot reused: more than " + std::to_string(slots_) +
                        " micro-batches in flight)");
        const std::size_t n = rows(), C = config_.d_model, V = config_.vocab;
        detail::expect_size(grad_out.size(), output_size(), "gpt_stage::backward", "grad_out");
        detail::expect_size(grad_in.size(), input_size(), "gpt_stage::backward", "grad_in");
        const std::span<float> P(params_), G(grads_);
        if (last()) {
            cross_entropy_backward(a.probs, fed(targets_, m), grad_out[0], d_logits_, n, V);
            linear_backward(a.lnf_out, head_.of(P), d_logits_, d_tmp_, head_.of(G), {}, n, C, V);
            std::fill(d_res_.begin(), d_res_.end(), 0.0f);
            layer_norm_backward(a.resid_at(blocks_), lnf_gamma_.of(P), a.lnf_mean, a.lnf_rstd, d_tmp_, d_res_,
                                lnf_gamma_.of(G), lnf_beta_.of(G), n, C);
        } else {
            std::copy(grad_out.begin(), grad_out.end(), d_res_.begin());
        }
        for (std::size_t b = blocks_; b-- > 0;) {
            block_.backward(block_params(P, b), block_params(G, b), a.resid_at(b), a.blocks[b], d_res_, d_tmp_);
            std::swap(d_res_, d_tmp_);
        }
        if (first())
            embedding_backward(fed(tokens_, m), d_res_, wte_.of(G), wpe_.of(G), embedding());
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
    tensor_slice token_embedding() const noexcept { return wte_; }
    tensor_slice position_embedding() const noexcept { return wpe_; }
    tensor_slice final_gamma() const noexcept { return lnf_gamma_; }
    tensor_slice final_beta() const noexcept { return lnf_beta_; }
    tensor_slice head() const noexcept { return head_; }
    // Block b of this stage (model layer layers().begin + b).
    tensor_slice block(std::size_t b) const noexcept { return {blocks_offset_ + b * block_.layout().size, block_.layout().size}; }
    const block_layout& layout() const noexcept { return block_.layout(); }

private:
    struct activations {
        int microbatch = -1;              // whose activations these are; -1 when none
        std::vector<float> resid;         // the residual stream entering each block, and leaving the last
        std::vector<block_cache> blocks;  // per block
        std::vector<float> lnf_mean, lnf_rstd, lnf_out, probs;  // last stage only

        explicit activations(const gpt_stage& s) : resid((s.blocks_ + 1) * s.rows() * s.config_.d_model) {
            blocks.reserve(s.blocks_);
            for (std::size_t b = 0; b < s.blocks_; ++b) blocks.emplace_back(s.shape_);
            if (s.last()) {
                lnf_mean.resize(s.rows());
                lnf_rstd.resize(s.rows());
                lnf_out.resize(s.rows() * s.config_.d_model);
                probs.resize(s.rows() * s.config_.vocab);
            }
        }
        std::span<float> resid_at(std::size_t b) {
            const std::size_t n = resid.size() / (blocks.size() + 1);
            return std::span<float>(resid).subspan(b * n, n);
        }
    };

    static int positive(int v, const char* what) {
        if (v < 1) throw config_error(std::string("nn::gpt_stage: ") + what + " must be at least 1");
        return v;
    }
    static const block_shape& valid(const gpt_config& c, int stage, int stages, const block_shape& s) {
        c.validate();
        if (stages < 1 || stage < 0 || stage >= stages)
            throw config_error("nn::gpt_stage: stage " + std::to_string(stage) + " of " + std::to_string(stages));
        if (static_cast<std::size_t>(stages) > c.layers)
            throw config_error("nn::gpt_stage: " + std::to_string(stages) + " stages for " + std::to_string(c.layers) +
                               " blocks: every stage needs a block");
        return s;
    }
    std::size_t index(int microbatch, const char* what) const {
        if (microbatch < 0) throw error(std::string("nn::gpt_stage::") + what + ": negative micro-batch number");
        return static_cast<std::size_t>(microbatch);
    }
    static void keep(std::vector<std::vector<std::int32_t>>& store, std::size_t m, std::span<const std::int32_t> ids) {
        if (store.size() <= m) store.resize(m + 1);
        store[m].assign(ids.begin(), ids.end());
    }
    const std::vector<std::int32_t>& fed(const std::vector<std::vector<std::int32_t>>& store, std::size_t m) const {
        if (m >= store.size() || store[m].empty())
            throw error("nn::gpt_stage: micro-batch " + std::to_string(m) + " was not fed its tokens and targets");
        return store[m];
    }
    std::size_t rows() const noexcept { return batch_ * config_.context; }
    embedding_shape embedding() const noexcept { return {batch_, config_.context, config_.vocab, config_.d_model}; }
    template <class T>
    std::span<T> block_params(std::span<T> all, std::size_t b) const {
        return block(b).of(all);
    }

    void initialise() {
        const std::span<float> P(params_);
        const std::uint64_t seed = config_.seed;
        if (first()) {
            fill_normal(wte_.of(P), 0.02, parameter_key(seed, 0, gpt_tensor::token_embedding));
            fill_normal(wpe_.of(P), 0.02, parameter_key(seed, 0, gpt_tensor::position_embedding));
        }
        for (std::size_t b = 0; b < blocks_; ++b)
            init_block(block_params(P, b), config_.d_model, seed, first_layer_ + b, config_.layers);
        if (last()) {
            std::fill_n(lnf_gamma_.of(P).begin(), config_.d_model, 1.0f);
            fill_normal(head_.of(P), 0.02, parameter_key(seed, 0, gpt_tensor::head_weight));
        }
    }

    void run(int microbatch, std::span<const float> in, std::span<float> out, activations& a) {
        const auto m = static_cast<std::size_t>(microbatch);
        const std::size_t n = rows(), C = config_.d_model, V = config_.vocab;
        detail::expect_size(in.size(), input_size(), "gpt_stage::forward", "in");
        detail::expect_size(out.size(), output_size(), "gpt_stage::forward", "out");
        const std::span<const float> P(params_);
        a.microbatch = -1;
        if (first())
            embedding_forward(fed(tokens_, m), wte_.of(P), wpe_.of(P), a.resid_at(0), embedding());
        else
            std::copy(in.begin(), in.end(), a.resid_at(0).begin());
        for (std::size_t b = 0; b < blocks_; ++b) block_.forward(block_params(P, b), a.resid_at(b), a.resid_at(b + 1), a.blocks[b]);
        if (last()) {
            layer_norm_forward(a.resid_at(blocks_), lnf_gamma_.of(P), lnf_beta_.of(P), a.lnf_out, a.lnf_mean, a.lnf_rstd, n, C);
            linear_forward(a.lnf_out, head_.of(P), {}, a.probs, n, C, V);
            out[0] = cross_entropy_forward(a.probs, fed(targets_, m), a.probs, n, V);
        } else {
            const std::span<const float> y = a.resid_at(blocks_);
            std::copy(y.begin(), y.end(), out.begin());
        }
    }

    gpt_config config_;
    int stage_, stages_;
    std::size_t batch_;
    int slots_;
    block_shape shape_;
    transformer_block block_;
    std::size_t first_layer_ = 0, blocks_ = 0, blocks_offset_ = 0;
    tensor_slice wte_, wpe_, lnf_gamma_, lnf_beta_, head_;
    std::vector<float> params_, grads_;
    std::vector<std::unique_ptr<activations>> slot_;  // slots_ for training, then one for evaluate
    std::vector<std::vector<std::int32_t>> tokens_, targets_;
    std::vector<float> d_res_, d_tmp_, d_logits_;
};

static_assert(concepts::stage<gpt_stage>);

}  // namespace dtfm::nn
