// cuda::gpt_stage and cuda::adamw checked as the host stage is (tests/unit/nn/test_gpt_stage.cpp):
// the whole model's gradients against central differences of the fp64 reference GPT (relative
// error ≤ 1e-4 per tensor, the host's bar), stages of a split model against the whole model's
// losses and gradients, slots, accumulation and refusals, and a few AdamW steps that learn a
// periodic sequence. Included by test_gpt.cu (nvcc, a GPU) and test_gpt_cpp.cpp (g++, Thrust's CPP
// system, cuda::blas on nn::gemm), which also compares against the host stage bit for bit.
//
// Tolerances, where a GPU's results differ from the host's by rounding (cuBLAS's summation order,
// fused multiply-adds): the split model's losses and gradients within 1e-6 relative (per tensor)
// on the CPP system (the host test's bar) and 1e-5 on a GPU; cuda::adamw against optim::adamw
// exact on the CPP system, 1e-6 on a GPU. On a GPU only: a non-blocking stream gives exactly the
// default stream's results.
#pragma once

#include <thrust/copy.h>
#include <thrust/device_vector.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "../unit/nn/reference.hpp"
#include "check_support.hpp"
#include "dtfm/cuda/adamw.cuh"
#include "dtfm/cuda/device_buffer.cuh"
#include "dtfm/cuda/gpt_stage.cuh"
#include "dtfm/optim/adamw.hpp"

namespace gpt_checks {

using dtfm::cuda::gpt_stage;
using dtfm::nn::gpt_config;

using checks::expect;
using checks::span_of;
using checks::to_host;

inline constexpr double split_tolerance = dtfm::cuda::detail::on_gpu ? 1e-5 : 1e-6;

inline gpt_config tiny_test() { return ref::tiny_test_config(); }
using batch = ref::test_batch;

// Every tensor of a stage, as slices of its buffers.
inline std::vector<dtfm::nn::tensor_slice> tensors_of(const dtfm::nn::gpt_layout& lay) {
    std::vector<dtfm::nn::tensor_slice> tensors;
    for (auto t : {lay.token_embedding(), lay.position_embedding(), lay.final_gamma(), lay.final_beta(), lay.head()})
        if (t.size > 0) tensors.push_back(t);
    const auto& l = lay.block_tensors();
    for (std::size_t blk = 0; blk < lay.blocks(); ++blk) {
        const std::size_t o = lay.block(blk).offset;
        for (auto t : {l.ln1_gamma, l.ln1_beta, l.qkv_weight, l.qkv_bias, l.proj_weight, l.proj_bias, l.ln2_gamma, l.ln2_beta,
                       l.fc_weight, l.fc_bias, l.out_weight, l.out_bias})
            tensors.push_back({o + t.offset, t.size});
    }
    return tensors;
}

inline double max_relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
    double err = 0.0, scale = 0.0;
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
        err = std::max(err, std::abs(static_cast<double>(a[i]) - b[i]));
        scale = std::max(scale, std::abs(static_cast<double>(b[i])));
    }
    return a.size() == b.size() ? err / scale : 1e30;
}

// One micro-batch's forward and backward through a 1-stage model; returns the loss.
inline float step(gpt_stage& s, const batch& b, float scale = 1.0f) {
    s.feed(0, b.tokens, b.targets);
    thrust::device_vector<float> loss(1), grad(1, scale);
    s.forward(0, {}, span_of(loss));
    s.backward(0, span_of(grad), {});
    return to_host(loss)[0];
}

inline void whole_model_gradient_check() {
    gpt_config c = tiny_test();
    c.layers = 2;
    const int B = 2;
    gpt_stage s(c, 0, 1, B, 1);
    expect(s.parameters().size() == c.parameter_count(), "gradient check: the stage holds the whole model");
    std::vector<float> p = s.parameters_on_host();
    const auto noise = ref::random_floats(p.size(), 71, 0.05);
    for (std::size_t i = 0; i < p.size(); ++i) p[i] += noise[i];
    s.set_parameters(p);
    const batch b(c, B, 0);
    const float loss = step(s, b);
    ref::vec P = ref::to_double(p);
    auto f = [&] { return ref::gpt(c, P, b.tokens, b.targets, B); };
    const double want = f();
    expect(std::abs(loss - want) <= 1e-5 * std::abs(want), "gradient check: the loss is the fp64 reference's within 1e-5");
    const ref::vec num = ref::numeric_gradient(P, f);
    const std::vector<float> g = s.gradients_on_host();
    for (const auto& t : tensors_of(s.stage_layout())) {
        const double e = ref::relative_error(t.of(std::span<const float>(g)), ref::part(num, t));
        expect(e < 1e-4, "gradient check: tensor at offset " + std::to_string(t.offset) + " has relative error " + std::to_string(e));
    }
}

struct pipeline_result {
    std::vector<float> parameters, gradients, losses;
};

// M micro-batches through `stages` device stages, GPipe order, activations passed in device memory.
inline pipeline_result run_pipeline(const gpt_config& c, int stages, int micro_batch, int M) {
    std::vector<std::unique_ptr<gpt_stage>> s;
    for (int i = 0; i < stages; ++i) s.push_back(std::make_unique<gpt_stage>(c, i, stages, micro_batch, M));
    pipeline_result r;
    std::vector<std::vector<thrust::device_vector<float>>> acts(static_cast<std::size_t>(M));
    for (int m = 0; m < M; ++m) {
        const batch b(c, micro_batch, m);
        auto& a = acts[static_cast<std::size_t>(m)];
        a.resize(static_cast<std::size_t>(stages) + 1);
        for (int i = 0; i < stages; ++i) {
            auto& st = *s[static_cast<std::size_t>(i)];
            st.feed(m, b.tokens, b.targets);
            a[static_cast<std::size_t>(i) + 1].resize(st.output_size());
            st.forward(m, span_of(a[static_cast<std::size_t>(i)]), span_of(a[static_cast<std::size_t>(i) + 1]));
        }
        r.losses.push_back(to_host(a.back())[0]);
    }
    for (int m = M - 1; m >= 0; --m) {
        thrust::device_vector<float> grad(1, 1.0f / static_cast<float>(M));
        for (int i = stages - 1; i >= 0; --i) {
            auto& st = *s[static_cast<std::size_t>(i)];
            thrust::device_vector<float> grad_in(st.input_size());
            st.backward(m, span_of(grad), span_of(grad_in));
            grad = std::move(grad_in);
        }
    }
    for (auto& st : s) {
        const auto p = st->parameters_on_host(), g = st->gradients_on_host();
        r.parameters.insert(r.parameters.end(), p.begin(), p.end());
        r.gradients.insert(r.gradients.end(), g.begin(), g.end());
    }
    return r;
}

inline void split_model_matches_whole() {
    const gpt_config c = tiny_test();
    const int B = 2, M = 3;
    const pipeline_result one = run_pipeline(c, 1, B, M);
    expect(one.parameters.size() == c.parameter_count(), "split: one stage holds the whole model");
    for (int stages : {2, 4}) {
        const std::string at = std::to_string(stages) + " stages: ";
        const pipeline_result split = run_pipeline(c, stages, B, M);
        expect(split.parameters == one.parameters, at + "the same initial parameters");
        for (int m = 0; m < M; ++m) {
            const float a = split.losses[static_cast<std::size_t>(m)], b = one.losses[static_cast<std::size_t>(m)];
            expect(std::abs(a - b) <= split_tolerance * std::abs(b), at + "the loss of micro-batch " + std::to_string(m));
        }
        // Tensor by tensor (the stages' buffers concatenated are the whole model's), so a small
        // tensor's error is not hidden by a large one's scale.
        for (const auto& t : tensors_of(dtfm::nn::gpt_layout(c, 0, 1))) {
            const std::span<const float> a = t.of(std::span<const float>(split.gradients)), b = t.of(std::span<const float>(one.gradients));
            const double d = max_relative_difference(std::vector<float>(a.begin(), a.end()), std::vector<float>(b.begin(), b.end()));
            expect(d <= split_tolerance, at + "gradients of the tensor at " + std::to_string(t.offset) + " differ by " + std::to_string(d));
        }
    }
}

template <class F>
bool throws_dtfm_error(F&& f) {
    try {
        f();
    } catch (const dtfm::error&) {
        return true;
    }
    return false;
}

inline void slots_accumulation_and_refusals() {
    const gpt_config c = tiny_test();
    gpt_stage s(c, 0, 1, 1, 2);
    const batch b0(c, 1, 0), b1(c, 1, 1);
    s.feed(0, b0.tokens, b0.targets);
    s.feed(1, b1.tokens, b1.targets);
    thrust::device_vector<float> l0(1), l1(1), e1(1), one(1, 1.0f);
    s.forward(0, {}, span_of(l0));
    s.evaluate(1, {}, span_of(e1));
    s.forward(1, {}, span_of(l1));
    expect(to_host(e1) == to_host(l1), "slots: evaluate gives forward's loss");
    s.backward(0, span_of(one), {});
    const std::vector<float> g0 = s.gradients_on_host();
    expect(throws_dtfm_error([&] { s.backward(0, span_of(one), {}); }), "slots: a second backward of micro-batch 0 is refused");
    s.backward(1, span_of(one), {});
    const std::vector<float> g01 = s.gradients_on_host();
    gpt_stage t(c, 0, 1, 1, 1);
    step(t, b1);
    const std::vector<float> g1 = t.gradients_on_host();
    std::vector<float> sum(g0.size());
    for (std::size_t i = 0; i < g0.size(); ++i) sum[i] = g0[i] + g1[i];
    expect(max_relative_difference(g01, sum) <= 1e-6, "accumulation: two backwards add their gradients");
    s.zero_gradients();
    const std::vector<float> z = s.gradients_on_host();
    expect(std::all_of(z.begin(), z.end(), [](float v) { return v == 0.0f; }), "zero_gradients clears");

    std::vector<std::int32_t> bad = b0.tokens;
    bad[2] = static_cast<std::int32_t>(c.vocab);
    expect(throws_dtfm_error([&] { s.feed(5, bad, b0.targets); }), "refusal: a token outside the vocabulary");
    bad[2] = -1;
    expect(throws_dtfm_error([&] { s.feed(5, b0.tokens, bad); }), "refusal: a negative target");
    expect(throws_dtfm_error([&] { s.feed(0, b1.tokens, bad); }), "refusal: a negative target, on a slot fed before");
    thrust::device_vector<float> again(1);
    s.evaluate(0, {}, span_of(again));
    expect(to_host(again) == to_host(l0), "a refused feed leaves the slot as it was (its tokens too)");
    expect(throws_dtfm_error([&] { s.feed(5, std::span<const std::int32_t>(b0.tokens).first(3), b0.targets); }),
           "refusal: too few tokens");
    expect(throws_dtfm_error([&] { s.forward(5, {}, span_of(l0)); }), "refusal: forward of a micro-batch never fed");
    expect(throws_dtfm_error([&] { s.backward(7, span_of(one), {}); }), "refusal: backward of a micro-batch never forwarded");
    thrust::device_vector<float> two(2);
    expect(throws_dtfm_error([&] { s.forward(0, {}, span_of(two)); }), "refusal: an output of the wrong size");
    expect(throws_dtfm_error([&] { gpt_stage(c, 0, 1, 0, 1); }), "refusal: micro_batch 0");
    expect(throws_dtfm_error([&] { gpt_stage(c, 5, 5, 1, 1); }), "refusal: more stages than blocks");
    std::vector<float> wrong(3);
    expect(throws_dtfm_error([&] { s.set_parameters(wrong); }), "refusal: set_parameters of the wrong size");
}

// cuda::adamw over a 1-stage model on a periodic sequence: 30 steps take the loss well down.
inline void adamw_learns() {
    gpt_config c = tiny_test();
    c.layers = 2;
    gpt_stage s(c, 0, 1, 2, 1);
    dtfm::cuda::adamw opt({.lr = 3e-2f, .weight_decay = 0.0f});
    batch b(c, 2, 0);
    for (std::size_t i = 0; i < b.tokens.size(); ++i) {
        b.tokens[i] = static_cast<std::int32_t>(i % 3);
        b.targets[i] = static_cast<std::int32_t>((i + 1) % 3);
    }
    float first = 0, last = 0;
    for (int k = 0; k < 30; ++k) {
        s.zero_gradients();
        last = step(s, b);
        if (k == 0) first = last;
        opt.step(s.parameters(), s.gradients());
    }
    expect(opt.steps() == 30, "adamw: counts its steps");
    expect(last < 0.2f * first, "adamw: 30 steps take the loss from " + std::to_string(first) + " to " + std::to_string(last));
    thrust::device_vector<float> few(3);
    expect(throws_dtfm_error([&] { opt.step(s.parameters(), span_of(few)); }), "adamw: refuses gradients of another size");
}

// cuda::adamw against optim::adamw on the same values: equal on the CPP system, within 1e-6
// relative on a GPU (fused multiply-adds, sqrtf).
inline void adamw_matches_host() {
    const std::size_t n = 1000;
    std::vector<float> p = ref::random_floats(n, 5), host_p = p;
    thrust::device_vector<float> dev_p(p.begin(), p.end());
    dtfm::optim::adamw host({.lr = 1e-2f});
    dtfm::cuda::adamw dev({.lr = 1e-2f});
    for (int k = 0; k < 3; ++k) {
        const std::vector<float> g = ref::random_floats(n, 10 + static_cast<std::uint64_t>(k));
        thrust::device_vector<float> dev_g(g.begin(), g.end());
        host.step(host_p, g);
        dev.step(span_of(dev_p), span_of(dev_g));
    }
    const double d = max_relative_difference(to_host(dev_p), host_p);
    expect(d <= (dtfm::cuda::detail::on_gpu ? 1e-6 : 0.0), "adamw: device parameters differ from the host's by " + std::to_string(d));
}

// On a GPU: the stage and its optimizer on a non-blocking stream (no implicit ordering with the
// default stream) give exactly what they give on the default stream, over steps of several
// micro-batches fed one after another (feed, forward and backward queued with no waits).
inline void own_stream_matches_default_stream() {
    if constexpr (dtfm::cuda::detail::on_gpu) {
        const gpt_config c = tiny_test();
        const int B = 2, M = 4;
        auto train = [&](dtfm::cuda::stream_t stream) {
            gpt_stage s(c, 0, 1, B, M, stream);
            dtfm::cuda::adamw opt({.lr = 1e-2f}, stream);
            dtfm::cuda::device_buffer<float> losses(M), scale(1);
            const float inv = 1.0f / M;
            scale.copy_from_host(std::span<const float>(&inv, 1), stream);
            for (int step = 0; step < 3; ++step) {
                s.zero_gradients();
                for (int m = 0; m < M; ++m) {
                    const batch b(c, B, m + step * M);
                    s.feed(m, b.tokens, b.targets);
                    s.forward(m, {}, std::span<float>(losses.data() + m, 1));
                }
                for (int m = M - 1; m >= 0; --m) s.backward(m, std::span<const float>(scale.data(), 1), {});
                opt.step(s.parameters(), s.gradients());
            }
            std::vector<float> result = s.parameters_on_host(), l(M);
            losses.copy_to_host(l, stream);
            s.synchronize();
            result.insert(result.end(), l.begin(), l.end());
            return result;
        };
        cudaStream_t own;
        dtfm::detail::check_cuda(cudaStreamCreateWithFlags(&own, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
        const std::vector<float> a = train(nullptr), b = train(own);
        cudaStreamDestroy(own);
        expect(a == b, "streams: a non-blocking stream gives the default stream's parameters and losses");
    }
}

inline int run_all() {
    whole_model_gradient_check();
    split_model_matches_whole();
    slots_accumulation_and_refusals();
    adamw_learns();
    adamw_matches_host();
    own_stream_matches_default_stream();
    return checks::failures;
}

}  // namespace gpt_checks
