// cuda::gpt_stage: nn::gpt_stage on a GPU, a dtfm::concepts::stage in cuda_space. The same model,
// split and parameters (nn::gpt_layout, so a host and a device stage of the same config start
// equal and their buffers have one layout) and the same protocol: feed, forward, evaluate,
// backward, with activations kept per slot. Parameters, gradients and the spans forward and
// backward take are device memory; feed takes host token ids, checks them and copies them over.
//
// GEMMs go through cuda::blas (cuBLAS; attention's per-head products as strided batches over the
// sequences). Every other layer runs the host's own row, column or element functions
// (nn::detail::layer_norm_row, causal_softmax_row, cross_entropy_row, gelu, …) one per thread;
// parameter gradients that sum over rows run one column per thread, so no two threads add into
// one value and results do not depend on scheduling. With Thrust's CPP system (and nn::gemm) the
// whole stage runs here bit for bit as the host stage computes it; on a GPU it differs by float
// rounding (cuBLAS's summation order, fused multiply-adds).
//
// Work is queued on the stage's stream: forward and backward return before it finishes. Read
// results with the *_on_host accessors (which wait) or after synchronize(). The last stage's
// backward reads dObjective/dLoss from grad_out[0] in device memory, on the stream.
#pragma once

#include <thrust/device_vector.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dtfm/concepts/stage.hpp"
#include "dtfm/cuda/blas.cuh"
#include "dtfm/cuda/payload.cuh"
#include "dtfm/error.hpp"
#include "dtfm/nn/activation_slots.hpp"
#include "dtfm/nn/block_layout.hpp"
#include "dtfm/nn/causal_softmax.hpp"
#include "dtfm/nn/cross_entropy.hpp"
#include "dtfm/nn/embedding.hpp"
#include "dtfm/nn/gelu.hpp"
#include "dtfm/nn/gpt_config.hpp"
#include "dtfm/nn/gpt_layout.hpp"
#include "dtfm/nn/layer_norm.hpp"
#include "dtfm/spaces.hpp"

namespace dtfm::cuda {

namespace detail::gpt {

// One functor per launch; each names what one thread does.
struct layer_norm_rows {
    const float *x, *gamma, *beta;
    float *y, *mean, *rstd;
    std::size_t c;
    DTFM_HOST_DEVICE void operator()(std::size_t r) const {
        nn::detail::layer_norm_row(x + r * c, gamma, beta, y + r * c, mean[r], rstd[r], c);
    }
};

struct layer_norm_backward_rows {
    const float *x, *gamma, *mean, *rstd, *dy;
    float* dx;
    std::size_t c;
    DTFM_HOST_DEVICE void operator()(std::size_t r) const {
        nn::detail::layer_norm_row_backward(x + r * c, gamma, mean[r], rstd[r], dy + r * c, dx + r * c, c);
    }
};

struct layer_norm_parameter_columns {
    const float *x, *mean, *rstd, *dy;
    float *dgamma, *dbeta;
    std::size_t n, c;
    DTFM_HOST_DEVICE void operator()(std::size_t i) const {
        nn::detail::layer_norm_parameter_column(i, x, mean, rstd, dy, dgamma, dbeta, n, c);
    }
};

// y[r, j] = b[j]: the bias, before the GEMM adds x·W (β = 1), as the host's linear_forward does.
struct broadcast_bias {
    const float* b;
    float* y;
    std::size_t out;
    DTFM_HOST_DEVICE void operator()(std::size_t i) const { y[i] = b[i % out]; }
};

// db[j] += Σ_r dy[r, j], rows in order.
struct bias_gradient_columns {
    const float* dy;
    float* db;
    std::size_t n, out;
    DTFM_HOST_DEVICE void operator()(std::size_t j) const {
        float s = db[j];
        for (std::size_t r = 0; r < n; ++r) s += dy[r * out + j];
        db[j] = s;
    }
};

struct add_into {
    float* y;
    const float* x;
    DTFM_HOST_DEVICE void operator()(std::size_t i) const { y[i] += x[i]; }
};

struct gelu_forward {
    const float* x;
    float* y;
    DTFM_HOST_DEVICE void operator()(std::size_t i) const { y[i] = nn::detail::gelu(x[i]); }
};

struct gelu_backward {
    const float *x, *dy;
    float* dx;  // may be dy
    DTFM_HOST_DEVICE void operator()(std::size_t i) const { dx[i] = nn::detail::gelu_gradient(x[i], dy[i]); }
};

// Row R of every (sequence, head) T×T matrix, R = (b·H + h)·T + i.
struct causal_softmax_rows {
    float* p;
    std::size_t T;
    DTFM_HOST_DEVICE void operator()(std::size_t R) const { nn::detail::causal_softmax_row(p + R * T, R % T, T); }
};

struct causal_softmax_backward_rows {
    const float* p;
    float* d;
    std::size_t T;
    float scale;
    DTFM_HOST_DEVICE void operator()(std::size_t R) const {
        nn::detail::causal_softmax_backward_row(p + R * T, d + R * T, R % T, T, scale);
    }
};

struct embedding_rows {
    const std::int32_t* tokens;
    const float *wte, *wpe;
    float* out;
    std::size_t T, C;
    DTFM_HOST_DEVICE void operator()(std::size_t r) const {
        nn::detail::embedding_row(wte + static_cast<std::size_t>(tokens[r]) * C, wpe + (r % T) * C, out + r * C, C);
    }
};

struct embedding_backward_columns {
    const std::int32_t* tokens;
    const float* dout;
    float *dwte, *dwpe;
    std::size_t rows, T, C;
    DTFM_HOST_DEVICE void operator()(std::size_t i) const {
        nn::detail::embedding_backward_column(i, tokens, dout, dwte, dwpe, rows, T, C);
    }
};

struct cross_entropy_rows {
    float* probs;  // logits in, softmax out
    const std::int32_t* targets;
    double* loss;
    std::size_t V;
    DTFM_HOST_DEVICE void operator()(std::size_t r) const {
        loss[r] = nn::detail::cross_entropy_row(probs + r * V, probs + r * V, static_cast<std::size_t>(targets[r]), V);
    }
};

// One thread: the mean of the rows' losses, summed in row order as the host does.
struct mean_loss {
    const double* loss;
    std::size_t n;
    float* out;
    DTFM_HOST_DEVICE void operator()(std::size_t) const {
        double s = 0.0;
        for (std::size_t r = 0; r < n; ++r) s += loss[r];
        *out = n == 0 ? 0.0f : static_cast<float>(s / static_cast<double>(n));
    }
};

struct cross_entropy_backward_rows {
    const float* probs;
    const std::int32_t* targets;
    const float* scale;  // dObjective/dLoss, in device memory
    float* d;
    std::size_t n, V;
    DTFM_HOST_DEVICE void operator()(std::size_t r) const {
        const float f = *scale / static_cast<float>(n);
        nn::detail::cross_entropy_row_backward(probs + r * V, static_cast<std::size_t>(targets[r]), f, d + r * V, V);
    }
};

}  // namespace detail::gpt

class gpt_stage {
public:
    using stage_concept = stage_tag;
    using memory_space = cuda_space;
    using value_type = float;
    using input_type = float;
    using output_type = float;
    using layer_range = nn::gpt_layout::layer_range;

    gpt_stage(const nn::gpt_config& c, int stage, int stages, int micro_batch, int slots, stream_t stream = nullptr)
        : layout_(c, stage, stages), batch_(static_cast<std::size_t>(positive(micro_batch))), blas_(stream),
          slots_(slots, "cuda::gpt_stage", [this] { return std::make_unique<activations>(*this); }) {
        const std::size_t C = c.d_model, n = rows();
        std::vector<float> initial(layout_.size());
        layout_.initialise(initial);
        params_.assign(initial.begin(), initial.end());
        grads_.assign(layout_.size(), 0.0f);
        d_res_.resize(n * C);
        d_tmp_.resize(n * C);
        d_wide_.resize(n * 4 * C);
        d_qkv_.resize(n * 3 * C);
        d_a_.resize(n * C);
        d_mid_.resize(n * C);
        d_scores_.resize(attention().probs_size());
        if (last()) d_logits_.resize(n * c.vocab);
    }

    bool first() const noexcept { return layout_.first(); }
    bool last() const noexcept { return layout_.last(); }
    int stage() const noexcept { return layout_.stage(); }
    int stages() const noexcept { return layout_.stages(); }
    int micro_batch() const noexcept { return static_cast<int>(batch_); }
    int slots() const noexcept { return slots_.count(); }
    const nn::gpt_config& config() const noexcept { return layout_.config(); }
    layer_range layers() const noexcept { return layout_.layers(); }
    // Where each tensor sits in parameters() and gradients(), as nn::gpt_stage has them.
    const nn::gpt_layout& stage_layout() const noexcept { return layout_; }
    const nn::block_layout& layout() const noexcept { return layout_.block_tensors(); }
    nn::tensor_slice token_embedding() const noexcept { return layout_.token_embedding(); }
    nn::tensor_slice position_embedding() const noexcept { return layout_.position_embedding(); }
    nn::tensor_slice final_gamma() const noexcept { return layout_.final_gamma(); }
    nn::tensor_slice final_beta() const noexcept { return layout_.final_beta(); }
    nn::tensor_slice head() const noexcept { return layout_.head(); }
    nn::tensor_slice block(std::size_t b) const noexcept { return layout_.block(b); }
    // The stream all of the stage's work is queued on; an optimizer stepping its parameters
    // (cuda::adamw) should be given the same one.
    stream_t stream() const noexcept { return blas_.stream(); }

    std::size_t input_size() const noexcept { return first() ? 0 : rows() * config().d_model; }
    std::size_t output_size() const noexcept { return last() ? 1 : rows() * config().d_model; }

    // Micro-batch m's ids (host memory), as nn::gpt_stage::feed takes them; an id outside the
    // vocabulary is a dtfm::error here, before anything reaches the device. The ids are copied on
    // the stream; from pageable memory the copy is staged before feed returns, so the caller may
    // reuse them (ids in pinned memory must stay untouched until the stream reaches the copy).
    void feed(int microbatch, std::span<const std::int32_t> tokens, std::span<const std::int32_t> targets) {
        const std::size_t m = slots_.number(microbatch, "feed");
        expect_size(tokens.size(), rows(), "feed", "tokens");
        expect_size(targets.size(), rows(), "feed", "targets");
        // Both checked before either is kept: a refused feed leaves the slot as it was.
        if (first()) checked(tokens);
        if (last()) checked(targets);
        if (first()) keep(tokens_, m, tokens);
        if (last()) keep(targets_, m, targets);
    }

    void forward(int microbatch, std::span<const float> in, std::span<float> out) {
        activations& a = slots_.training(microbatch);
        run(microbatch, in, out, a);
        a.microbatch = microbatch;
    }

    void evaluate(int microbatch, std::span<const float> in, std::span<float> out) {
        run(microbatch, in, out, slots_.evaluation(microbatch, [this] { return std::make_unique<activations>(*this); }));
    }

    void backward(int microbatch, std::span<const float> grad_out, std::span<float> grad_in) {
        activations& a = slots_.held(microbatch);
        const auto m = static_cast<std::size_t>(microbatch);
        const std::size_t n = rows(), C = config().d_model, V = config().vocab;
        expect_size(grad_out.size(), output_size(), "backward", "grad_out");
        expect_size(grad_in.size(), input_size(), "backward", "grad_in");
        const float* P = ptr(params_);
        float* G = ptr(grads_);
        if (last()) {
            launch(n, detail::gpt::cross_entropy_backward_rows{ptr(a.probs), ptr(fed(targets_, m)), grad_out.data(),
                                                                ptr(d_logits_), n, V});
            linear_backward(ptr(a.lnf_out), P + layout_.head().offset, ptr(d_logits_), ptr(d_tmp_),
                            G + layout_.head().offset, nullptr, C, V);
            fill(d_res_, 0.0f);
            layer_norm_backward(a.resid_at(blocks()), P + layout_.final_gamma().offset, ptr(a.lnf_mean), ptr(a.lnf_rstd),
                                ptr(d_tmp_), ptr(d_res_), G + layout_.final_gamma().offset, G + layout_.final_beta().offset);
        } else {
            copy(grad_out.data(), grad_out.size(), ptr(d_res_));
        }
        for (std::size_t b = blocks(); b-- > 0;) {
            block_backward(P + layout_.block(b).offset, G + layout_.block(b).offset, a.resid_at(b), a.blocks[b]);
            std::swap(d_res_, d_tmp_);
        }
        if (first())
            launch(C, detail::gpt::embedding_backward_columns{ptr(fed(tokens_, m)), ptr(d_res_), G + layout_.token_embedding().offset,
                                                              G + layout_.position_embedding().offset, n, config().context, C});
        else
            copy(ptr(d_res_), grad_in.size(), grad_in.data());
        a.microbatch = -1;
    }

    std::span<float> parameters() noexcept { return {ptr(params_), params_.size()}; }
    std::span<float> gradients() noexcept { return {ptr(grads_), grads_.size()}; }
    std::span<const float> parameters() const noexcept { return {ptr(params_), params_.size()}; }
    std::span<const float> gradients() const noexcept { return {ptr(grads_), grads_.size()}; }
    void zero_gradients() { fill(grads_, 0.0f); }

    // Host copies, after the stream's work so far: for checks, checkpoints and the host side of a
    // pipeline. set_parameters loads a host buffer of parameters().size() floats.
    std::vector<float> parameters_on_host() { return on_host(params_); }
    std::vector<float> gradients_on_host() { return on_host(grads_); }
    void set_parameters(std::span<const float> host) {
        expect_size(host.size(), params_.size(), "set_parameters", "parameters");
        transfer(ptr(params_), host.data(), host.size(), to_device);
        synchronize();
    }

    // Waits for the stage's queued work.
    void synchronize() {
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
        dtfm::detail::check_cuda(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
#endif
    }

private:
    using dvec = thrust::device_vector<float>;

    struct block_cache {
        dvec ln1_mean, ln1_rstd, ln1_out, qkv, probs, attn, mid, ln2_mean, ln2_rstd, ln2_out, fc, act;
        block_cache(std::size_t n, std::size_t C, std::size_t probs_size)
            : ln1_mean(n), ln1_rstd(n), ln1_out(n * C), qkv(n * 3 * C), probs(probs_size), attn(n * C), mid(n * C),
              ln2_mean(n), ln2_rstd(n), ln2_out(n * C), fc(n * 4 * C), act(n * 4 * C) {}
    };

    struct activations {
        int microbatch = -1;
        dvec resid;  // the residual stream entering each block, and leaving the last
        std::vector<block_cache> blocks;
        dvec lnf_mean, lnf_rstd, lnf_out, probs;  // last stage only
        thrust::device_vector<double> row_loss;   // last stage only
        std::size_t stride;

        explicit activations(const gpt_stage& s) : resid((s.blocks() + 1) * s.rows() * s.config().d_model), stride(s.rows() * s.config().d_model) {
            const std::size_t n = s.rows(), C = s.config().d_model;
            blocks.reserve(s.blocks());
            for (std::size_t b = 0; b < s.blocks(); ++b) blocks.emplace_back(n, C, s.attention().probs_size());
            if (s.last()) {
                lnf_mean.resize(n);
                lnf_rstd.resize(n);
                lnf_out.resize(n * C);
                probs.resize(n * s.config().vocab);
                row_loss.resize(n);
            }
        }
        float* resid_at(std::size_t b) { return thrust::raw_pointer_cast(resid.data()) + b * stride; }
    };

    template <class T>
    static T* ptr(thrust::device_vector<T>& v) {
        return thrust::raw_pointer_cast(v.data());
    }
    template <class T>
    static const T* ptr(const thrust::device_vector<T>& v) {
        return thrust::raw_pointer_cast(v.data());
    }

    using id_store = std::deque<thrust::device_vector<std::int32_t>>;  // grows without moving what it holds

    static int positive(int micro_batch) {
        if (micro_batch < 1) throw config_error("cuda::gpt_stage: micro_batch must be at least 1");
        return micro_batch;
    }
    // The host layers' checks, their messages naming this stage.
    static void expect_size(std::size_t got, std::size_t want, const char* call, const char* what) {
        nn::detail::expect_size(got, want, call, what, "cuda::gpt_stage::");
    }
    // ids, after checking every one is in [0, vocab).
    std::span<const std::int32_t> checked(std::span<const std::int32_t> ids) const {
        for (const std::int32_t t : ids) nn::detail::token_row(t, config().vocab, "feed", "cuda::gpt_stage::");
        return ids;
    }
    // Copies ids to the device on the stream, so the copy waits for the kernels still reading the
    // slot's previous ids. From pageable memory the copy is staged before it returns: ids may go.
    void keep(id_store& store, std::size_t m, std::span<const std::int32_t> ids) {
        if (store.size() <= m) store.resize(m + 1);
        thrust::device_vector<std::int32_t>& to = store[m];
        if (to.size() != ids.size()) to.resize(ids.size());
        transfer(ptr(to), ids.data(), ids.size(), to_device);
    }

    // Host ↔ device copies in the stream's order (on Thrust's CPP system, plain copies).
    enum direction : bool { to_host = false, to_device = true };
    template <class T>
    void transfer(T* to, const T* from, std::size_t count, direction d) {
        if (count == 0) return;
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
        dtfm::detail::check_cuda(cudaMemcpyAsync(to, from, count * sizeof(T), d == to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost,
                                                 stream()),
                                 d == to_device ? "cudaMemcpyAsync(host to device)" : "cudaMemcpyAsync(device to host)");
#else
        (void)d;
        std::copy(from, from + count, to);
#endif
    }

    static const thrust::device_vector<std::int32_t>& fed(const id_store& store, std::size_t m) {
        return nn::fed_ids(store, m, "cuda::gpt_stage");
    }

    std::size_t rows() const noexcept { return batch_ * config().context; }
    std::size_t blocks() const noexcept { return layout_.blocks(); }
    nn::attention_shape attention() const noexcept { return {batch_, config().context, config().heads, config().d_model}; }

    template <class F>
    void launch(std::size_t count, F f) {
        detail::for_each_index(stream(), count, f, "cuda::gpt_stage");
    }
    void copy(const float* from, std::size_t count, float* to) { detail::copy(stream(), from, count, to, "cuda::gpt_stage"); }
    void fill(dvec& v, float value) { detail::fill(stream(), ptr(v), v.size(), value, "cuda::gpt_stage"); }
    std::vector<float> on_host(dvec& v) {
        std::vector<float> h(v.size());
        transfer(h.data(), ptr(v), v.size(), to_host);
        synchronize();
        return h;
    }

    // y[n×out] = x·W + b (b may be null), as nn::linear_forward.
    void linear_forward(const float* x, const float* w, const float* b, float* y, std::size_t in, std::size_t out) {
        const std::size_t n = rows();
        if (b) launch(n * out, detail::gpt::broadcast_bias{b, y, out});
        blas_.gemm(transpose::no, transpose::no, n, out, in, 1.0f, x, in, w, out, b ? 1.0f : 0.0f, y, out);
    }
    // dx = dy·Wᵀ (when dx is not null), dW += xᵀ·dy, db += Σ_rows dy (when db is not null).
    void linear_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db, std::size_t in,
                         std::size_t out) {
        const std::size_t n = rows();
        if (dx) blas_.gemm(transpose::no, transpose::yes, n, in, out, 1.0f, dy, out, w, out, 0.0f, dx, in);
        blas_.gemm(transpose::yes, transpose::no, in, out, n, 1.0f, x, in, dy, out, 1.0f, dw, out);
        if (db) launch(out, detail::gpt::bias_gradient_columns{dy, db, n, out});
    }
    void layer_norm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd) {
        launch(rows(), detail::gpt::layer_norm_rows{x, gamma, beta, y, mean, rstd, config().d_model});
    }
    // dx += the input gradient; dγ, dβ accumulate.
    void layer_norm_backward(const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy,
                             float* dx, float* dgamma, float* dbeta) {
        const std::size_t C = config().d_model;
        launch(rows(), detail::gpt::layer_norm_backward_rows{x, gamma, mean, rstd, dy, dx, C});
        launch(C, detail::gpt::layer_norm_parameter_columns{x, mean, rstd, dy, dgamma, dbeta, rows(), C});
    }

    // Per head h, the products over all sequences at once: sequence b's Q, K, V start at
    // qkv + b·T·3C (+ 0, C, 2C) + h·d_h with row stride 3C; its P at probs + (b·H + h)·T².
    void attention_forward(const float* qkv, float* out, float* probs) {
        const nn::attention_shape s = attention();
        const std::size_t T = s.seq, C = s.d_model, H = s.heads, hd = s.head_dim(), B = s.batch;
        const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
        for (std::size_t h = 0; h < H; ++h) {
            const float* q = qkv + h * hd;
            blas_.gemm_batched(transpose::no, transpose::yes, T, T, hd, scale, q, 3 * C, T * 3 * C, q + C, 3 * C, T * 3 * C, 0.0f,
                               probs + h * T * T, T, H * T * T, B);
        }
        launch(B * H * T, detail::gpt::causal_softmax_rows{probs, T});
        for (std::size_t h = 0; h < H; ++h)
            blas_.gemm_batched(transpose::no, transpose::no, T, hd, T, 1.0f, probs + h * T * T, T, H * T * T, qkv + 2 * C + h * hd,
                               3 * C, T * 3 * C, 0.0f, out + h * hd, C, T * C, B);
    }
    // dqkv (overwritten) from dout; d_scores_ holds dP, then dS, of every (sequence, head).
    void attention_backward(const float* qkv, const float* probs, const float* dout, float* dqkv) {
        const nn::attention_shape s = attention();
        const std::size_t T = s.seq, C = s.d_model, H = s.heads, hd = s.head_dim(), B = s.batch;
        const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
        float* ds = ptr(d_scores_);
        for (std::size_t h = 0; h < H; ++h) {
            const float* p = probs + h * T * T;
            const float* dO = dout + h * hd;
            const float* v = qkv + 2 * C + h * hd;
            blas_.gemm_batched(transpose::yes, transpose::no, T, hd, T, 1.0f, p, T, H * T * T, dO, C, T * C, 0.0f,
                               dqkv + 2 * C + h * hd, 3 * C, T * 3 * C, B);
            blas_.gemm_batched(transpose::no, transpose::yes, T, T, hd, 1.0f, dO, C, T * C, v, 3 * C, T * 3 * C, 0.0f,
                               ds + h * T * T, T, H * T * T, B);
        }
        launch(B * H * T, detail::gpt::causal_softmax_backward_rows{probs, ds, T, scale});
        for (std::size_t h = 0; h < H; ++h) {
            const float* q = qkv + h * hd;
            blas_.gemm_batched(transpose::no, transpose::no, T, hd, T, 1.0f, ds + h * T * T, T, H * T * T, q + C, 3 * C, T * 3 * C,
                               0.0f, dqkv + h * hd, 3 * C, T * 3 * C, B);
            blas_.gemm_batched(transpose::yes, transpose::no, T, hd, T, 1.0f, ds + h * T * T, T, H * T * T, q, 3 * C, T * 3 * C,
                               0.0f, dqkv + C + h * hd, 3 * C, T * 3 * C, B);
        }
    }

    // As nn::transformer_block::forward.
    void block_forward(const float* p, const float* x, float* y, block_cache& c) {
        const std::size_t n = rows(), C = config().d_model;
        const nn::block_layout& l = layout_.block_tensors();
        layer_norm_forward(x, p + l.ln1_gamma.offset, p + l.ln1_beta.offset, ptr(c.ln1_out), ptr(c.ln1_mean), ptr(c.ln1_rstd));
        linear_forward(ptr(c.ln1_out), p + l.qkv_weight.offset, p + l.qkv_bias.offset, ptr(c.qkv), C, 3 * C);
        attention_forward(ptr(c.qkv), ptr(c.attn), ptr(c.probs));
        linear_forward(ptr(c.attn), p + l.proj_weight.offset, p + l.proj_bias.offset, ptr(c.mid), C, C);
        launch(n * C, detail::gpt::add_into{ptr(c.mid), x});
        layer_norm_forward(ptr(c.mid), p + l.ln2_gamma.offset, p + l.ln2_beta.offset, ptr(c.ln2_out), ptr(c.ln2_mean), ptr(c.ln2_rstd));
        linear_forward(ptr(c.ln2_out), p + l.fc_weight.offset, p + l.fc_bias.offset, ptr(c.fc), C, 4 * C);
        launch(n * 4 * C, detail::gpt::gelu_forward{ptr(c.fc), ptr(c.act)});
        linear_forward(ptr(c.act), p + l.out_weight.offset, p + l.out_bias.offset, y, 4 * C, C);
        launch(n * C, detail::gpt::add_into{y, ptr(c.mid)});
    }

    // As nn::transformer_block::backward: dy in d_res_, dx into d_tmp_.
    void block_backward(const float* p, float* g, const float* x, block_cache& c) {
        const std::size_t n = rows(), C = config().d_model;
        const nn::block_layout& l = layout_.block_tensors();
        float *dy = ptr(d_res_), *dx = ptr(d_tmp_), *wide = ptr(d_wide_), *da = ptr(d_a_), *dmid = ptr(d_mid_);
        linear_backward(ptr(c.act), p + l.out_weight.offset, dy, wide, g + l.out_weight.offset, g + l.out_bias.offset, 4 * C, C);
        launch(n * 4 * C, detail::gpt::gelu_backward{ptr(c.fc), wide, wide});
        linear_backward(ptr(c.ln2_out), p + l.fc_weight.offset, wide, da, g + l.fc_weight.offset, g + l.fc_bias.offset, C, 4 * C);
        copy(dy, n * C, dmid);
        layer_norm_backward(ptr(c.mid), p + l.ln2_gamma.offset, ptr(c.ln2_mean), ptr(c.ln2_rstd), da, dmid, g + l.ln2_gamma.offset,
                            g + l.ln2_beta.offset);
        linear_backward(ptr(c.attn), p + l.proj_weight.offset, dmid, da, g + l.proj_weight.offset, g + l.proj_bias.offset, C, C);
        attention_backward(ptr(c.qkv), ptr(c.probs), da, ptr(d_qkv_));
        linear_backward(ptr(c.ln1_out), p + l.qkv_weight.offset, ptr(d_qkv_), da, g + l.qkv_weight.offset, g + l.qkv_bias.offset, C,
                        3 * C);
        copy(dmid, n * C, dx);
        layer_norm_backward(x, p + l.ln1_gamma.offset, ptr(c.ln1_mean), ptr(c.ln1_rstd), da, dx, g + l.ln1_gamma.offset,
                            g + l.ln1_beta.offset);
    }

    void run(int microbatch, std::span<const float> in, std::span<float> out, activations& a) {
        const auto m = static_cast<std::size_t>(microbatch);
        const std::size_t n = rows(), C = config().d_model, V = config().vocab;
        expect_size(in.size(), input_size(), "forward", "in");
        expect_size(out.size(), output_size(), "forward", "out");
        const float* P = ptr(params_);
        a.microbatch = -1;
        if (first())
            launch(n, detail::gpt::embedding_rows{ptr(fed(tokens_, m)), P + layout_.token_embedding().offset,
                                                  P + layout_.position_embedding().offset, a.resid_at(0), config().context, C});
        else
            copy(in.data(), in.size(), a.resid_at(0));
        for (std::size_t b = 0; b < blocks(); ++b) block_forward(P + layout_.block(b).offset, a.resid_at(b), a.resid_at(b + 1), a.blocks[b]);
        if (last()) {
            layer_norm_forward(a.resid_at(blocks()), P + layout_.final_gamma().offset, P + layout_.final_beta().offset, ptr(a.lnf_out),
                               ptr(a.lnf_mean), ptr(a.lnf_rstd));
            linear_forward(ptr(a.lnf_out), P + layout_.head().offset, nullptr, ptr(a.probs), C, V);
            launch(n, detail::gpt::cross_entropy_rows{ptr(a.probs), ptr(fed(targets_, m)), ptr(a.row_loss), V});
            launch(1, detail::gpt::mean_loss{ptr(a.row_loss), n, out.data()});
        } else {
            copy(a.resid_at(blocks()), out.size(), out.data());
        }
    }

    nn::gpt_layout layout_;
    std::size_t batch_;
    blas blas_;
    nn::activation_slots<activations> slots_;
    dvec params_, grads_;
    id_store tokens_, targets_;
    dvec d_res_, d_tmp_, d_wide_, d_qkv_, d_a_, d_mid_, d_scores_, d_logits_;
};

static_assert(concepts::stage<gpt_stage>);

}  // namespace dtfm::cuda
