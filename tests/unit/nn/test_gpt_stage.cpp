// nn::gpt_stage: the whole model's gradients against central differences of the fp64 reference
// GPT (relative error ≤ 1e-4 per tensor); stages of a split model start from the whole model's
// parameters exactly, and give its losses and gradients (driven by hand, activations passed
// between stage objects) to within 1e-6 relative; slots, evaluate, accumulation, errors; with
// AdamW it learns a periodic sequence.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "dtfm/nn/gpt_stage.hpp"
#include "dtfm/optim/adamw.hpp"
#include "dtfm/optim/clip.hpp"
#include "reference.hpp"

using dtfm::nn::gpt_config;
using dtfm::nn::gpt_stage;

namespace {

gpt_config tiny_test() { return ref::tiny_test_config(); }
using batch = ref::test_batch;

// Runs M micro-batches through `stages` stage objects, GPipe order (all forwards, then all
// backwards in reverse), and returns each stage's gradients concatenated, plus the losses.
struct pipeline_result {
    std::vector<float> parameters, gradients, losses;
};

pipeline_result run_pipeline(const gpt_config& c, int stages, int micro_batch, int M) {
    std::vector<gpt_stage> s;
    for (int i = 0; i < stages; ++i) s.emplace_back(c, i, stages, micro_batch, M);
    pipeline_result r;
    // acts[m][i]: the input of stage i for micro-batch m (empty for stage 0).
    std::vector<std::vector<std::vector<float>>> acts(static_cast<std::size_t>(M));
    for (int m = 0; m < M; ++m) {
        const batch b(c, micro_batch, m);
        auto& a = acts[static_cast<std::size_t>(m)];
        a.resize(static_cast<std::size_t>(stages) + 1);
        for (int i = 0; i < stages; ++i) {
            auto& st = s[static_cast<std::size_t>(i)];
            st.feed(m, b.tokens, b.targets);
            a[static_cast<std::size_t>(i) + 1].resize(st.output_size());
            st.forward(m, a[static_cast<std::size_t>(i)], a[static_cast<std::size_t>(i) + 1]);
        }
        r.losses.push_back(a.back()[0]);
    }
    for (int m = M - 1; m >= 0; --m) {
        std::vector<float> grad{1.0f / static_cast<float>(M)};
        for (int i = stages - 1; i >= 0; --i) {
            auto& st = s[static_cast<std::size_t>(i)];
            std::vector<float> grad_in(st.input_size());
            st.backward(m, grad, grad_in);
            grad = std::move(grad_in);
        }
    }
    for (auto& st : s) {
        r.parameters.insert(r.parameters.end(), st.parameters().begin(), st.parameters().end());
        r.gradients.insert(r.gradients.end(), st.gradients().begin(), st.gradients().end());
    }
    return r;
}

double max_relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
    double err = 0.0, scale = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        err = std::max(err, std::abs(static_cast<double>(a[i]) - b[i]));
        scale = std::max(scale, std::abs(static_cast<double>(b[i])));
    }
    return err / scale;
}

}  // namespace

TEST_CASE("gpt_stage satisfies the stage concept", "[nn][gpt_stage]") { STATIC_REQUIRE(dtfm::concepts::stage<gpt_stage>); }

TEST_CASE("gpt_stage: whole-model gradient check against the fp64 reference GPT", "[nn][gpt_stage]") {
    gpt_config c = tiny_test();
    c.layers = 2;
    const int B = 2;
    gpt_stage s(c, 0, 1, B, 1);
    REQUIRE(s.parameters().size() == c.parameter_count());
    // Perturb the initial parameters so LayerNorm affine terms and biases carry gradient too.
    const auto noise = ref::random_floats(s.parameters().size(), 71, 0.05);
    for (std::size_t i = 0; i < noise.size(); ++i) s.parameters()[i] += noise[i];
    const batch b(c, B, 0);
    s.feed(0, b.tokens, b.targets);
    float loss = 0.0f;
    s.forward(0, {}, std::span<float>(&loss, 1));
    const float scale = 1.0f;
    s.backward(0, std::span<const float>(&scale, 1), {});

    ref::vec P = ref::to_double(s.parameters());
    auto f = [&] { return ref::gpt(c, P, b.tokens, b.targets, B); };
    REQUIRE(loss == Approx(f()).epsilon(1e-5));
    const ref::vec num = ref::numeric_gradient(P, f);
    const std::span<const float> g = s.gradients();
    std::vector<dtfm::nn::tensor_slice> tensors{s.token_embedding(), s.position_embedding(), s.final_gamma(), s.final_beta(), s.head()};
    for (std::size_t blk = 0; blk < 2; ++blk) {
        const auto& l = s.layout();
        const std::size_t o = s.block(blk).offset;
        for (auto t : {l.ln1_gamma, l.ln1_beta, l.qkv_weight, l.qkv_bias, l.proj_weight, l.proj_bias, l.ln2_gamma, l.ln2_beta,
                       l.fc_weight, l.fc_bias, l.out_weight, l.out_bias})
            tensors.push_back({o + t.offset, t.size});
    }
    for (const auto& t : tensors) {
        INFO("tensor at offset " << t.offset << ", " << t.size << " values");
        CHECK(ref::relative_error(t.of(g), ref::part(num, t)) < 1e-4);
    }
}

TEST_CASE("gpt_stage: 2 and 4 stages start from the 1-stage parameters and give its gradients", "[nn][gpt_stage]") {
    const gpt_config c = tiny_test();
    const int B = 2, M = 3;
    const pipeline_result one = run_pipeline(c, 1, B, M);
    REQUIRE(one.parameters.size() == c.parameter_count());
    for (int stages : {2, 4}) {
        INFO(stages << " stages");
        const pipeline_result split = run_pipeline(c, stages, B, M);
        REQUIRE(split.parameters == one.parameters);  // bit-identical initialisation
        for (int m = 0; m < M; ++m) REQUIRE(split.losses[static_cast<std::size_t>(m)] == Approx(one.losses[static_cast<std::size_t>(m)]).epsilon(1e-6));
        REQUIRE(split.gradients.size() == one.gradients.size());
        CHECK(max_relative_difference(split.gradients, one.gradients) < 1e-6);
    }
    gpt_config other = c;
    other.seed = 4;
    REQUIRE(run_pipeline(other, 1, B, 1).parameters != one.parameters);
}

TEST_CASE("gpt_stage: balanced contiguous layer ranges and buffer sizes", "[nn][gpt_stage]") {
    gpt_config c = tiny_test();
    c.layers = 6;
    std::size_t next = 0, total = 0;
    for (int s = 0; s < 4; ++s) {
        const auto r = gpt_stage::layers_of(c, s, 4);
        REQUIRE(r.begin == next);
        REQUIRE((r.end - r.begin == 1 || r.end - r.begin == 2));
        next = r.end;
        gpt_stage st(c, s, 4, 2, 1);
        REQUIRE(st.first() == (s == 0));
        REQUIRE(st.last() == (s == 3));
        REQUIRE(st.input_size() == (s == 0 ? 0 : 2 * c.context * c.d_model));
        REQUIRE(st.output_size() == (s == 3 ? 1 : 2 * c.context * c.d_model));
        REQUIRE(st.gradients().size() == st.parameters().size());
        total += st.parameters().size();
    }
    REQUIRE(next == c.layers);
    REQUIRE(total == c.parameter_count());
}

TEST_CASE("gpt_stage: slots hold micro-batches until backward, evaluate keeps nothing", "[nn][gpt_stage]") {
    const gpt_config c = tiny_test();
    const int B = 1;
    const batch b0(c, B, 0), b1(c, B, 1), b2(c, B, 2);
    float l0 = 0, l1 = 0, l2 = 0, e1 = 0;
    const float one = 1.0f;
    gpt_stage a(c, 0, 1, B, 2), ref_stage(c, 0, 1, B, 2);
    for (auto* s : {&a, &ref_stage}) {
        s->feed(0, b0.tokens, b0.targets);
        s->feed(1, b1.tokens, b1.targets);
        s->feed(2, b2.tokens, b2.targets);
    }
    a.forward(0, {}, std::span<float>(&l0, 1));
    a.evaluate(1, {}, std::span<float>(&e1, 1));  // between forward and backward of micro-batch 0
    a.forward(1, {}, std::span<float>(&l1, 1));
    REQUIRE(e1 == l1);
    a.backward(0, std::span<const float>(&one, 1), {});
    ref_stage.forward(0, {}, std::span<float>(&l0, 1));
    ref_stage.backward(0, std::span<const float>(&one, 1), {});
    REQUIRE(std::vector<float>(a.gradients().begin(), a.gradients().end()) ==
            std::vector<float>(ref_stage.gradients().begin(), ref_stage.gradients().end()));
    // Micro-batch 2 reuses micro-batch 0's slot: fine, 0 is done. Then 1's slot is still held.
    a.forward(2, {}, std::span<float>(&l2, 1));
    a.backward(1, std::span<const float>(&one, 1), {});
    REQUIRE_THROWS_AS(a.backward(1, std::span<const float>(&one, 1), {}), dtfm::error);  // already done
    a.forward(0, {}, std::span<float>(&l0, 1));  // micro-batch 0 again, into slot 0: overwrites 2
    REQUIRE_THROWS_AS(a.backward(2, std::span<const float>(&one, 1), {}), dtfm::error);
}

TEST_CASE("gpt_stage: backward accumulates and zero_gradients clears", "[nn][gpt_stage]") {
    const gpt_config c = tiny_test();
    gpt_stage s(c, 0, 1, 1, 1);
    const batch b(c, 1, 0);
    s.feed(0, b.tokens, b.targets);
    float loss = 0;
    const float one = 1.0f;
    s.forward(0, {}, std::span<float>(&loss, 1));
    s.backward(0, std::span<const float>(&one, 1), {});
    const std::vector<float> g1(s.gradients().begin(), s.gradients().end());
    s.forward(0, {}, std::span<float>(&loss, 1));
    s.backward(0, std::span<const float>(&one, 1), {});
    for (std::size_t i = 0; i < g1.size(); ++i) REQUIRE(s.gradients()[i] == Approx(2 * g1[i]).margin(1e-7));
    s.zero_gradients();
    REQUIRE(std::all_of(s.gradients().begin(), s.gradients().end(), [](float v) { return v == 0.0f; }));
    REQUIRE(loss == Approx(std::log(11.0)).epsilon(0.05));  // near-uniform predictions at initialisation
}

TEST_CASE("gpt_stage: bad shapes and unfed micro-batches are errors", "[nn][gpt_stage]") {
    const gpt_config c = tiny_test();
    REQUIRE_THROWS_AS(gpt_stage(c, 0, 5, 1, 1), dtfm::config_error);  // more stages than blocks
    REQUIRE_THROWS_AS(gpt_stage(c, 2, 2, 1, 1), dtfm::config_error);
    REQUIRE_THROWS_AS(gpt_stage(c, 0, 1, 0, 1), dtfm::config_error);
    REQUIRE_THROWS_AS(gpt_stage(c, 0, 1, 1, 0), dtfm::config_error);
    gpt_config odd = c;
    odd.heads = 3;
    REQUIRE_THROWS_AS(gpt_stage(odd, 0, 1, 1, 1), dtfm::config_error);

    gpt_stage s(c, 0, 2, 1, 1);
    std::vector<float> out(s.output_size());
    REQUIRE_THROWS_AS(s.forward(0, {}, out), dtfm::error);  // not fed
    const batch b(c, 1, 0);
    REQUIRE_THROWS_AS(s.feed(0, std::span(b.tokens).first(2), b.targets), dtfm::error);
    std::vector<std::int32_t> bad = b.tokens;
    bad[1] = 11;
    s.feed(0, bad, b.targets);
    REQUIRE_THROWS_AS(s.forward(0, {}, out), dtfm::error);  // token outside the vocabulary
    s.feed(0, b.tokens, b.targets);
    std::vector<float> short_out(out.size() - 1);
    REQUIRE_THROWS_AS(s.forward(0, {}, short_out), dtfm::error);
    REQUIRE_THROWS_AS(s.backward(0, out, {}), dtfm::error);  // never forwarded
}

TEST_CASE("gpt_stage: with adamw, two stages learn a periodic sequence", "[nn][gpt_stage]") {
    const gpt_config c{.vocab = 16, .context = 8, .d_model = 16, .heads = 2, .layers = 2, .seed = 1};
    const int B = 2;
    gpt_stage s0(c, 0, 2, B, 1), s1(c, 1, 2, B, 1);
    dtfm::optim::adamw o0(dtfm::optim::adamw_options{.lr = 1e-2f, .weight_decay = 0.0f}), o1 = o0;
    // Period 5 over 16 symbols: every target is determined by the two tokens before it.
    std::vector<std::int32_t> tokens, targets;
    for (std::size_t i = 0; i < B * c.context; ++i) {
        tokens.push_back(static_cast<std::int32_t>((i * 3) % 5 + 2));
        targets.push_back(static_cast<std::int32_t>(((i + 1) * 3) % 5 + 2));
    }
    s0.feed(0, tokens, targets);
    s1.feed(0, tokens, targets);
    std::vector<float> act(s0.output_size()), grad(s1.input_size());
    float first = 0.0f, loss = 0.0f;
    const float one = 1.0f;
    for (int step = 0; step < 80; ++step) {
        s0.zero_gradients();
        s1.zero_gradients();
        s0.forward(0, {}, act);
        s1.forward(0, act, std::span<float>(&loss, 1));
        if (step == 0) first = loss;
        s1.backward(0, std::span<const float>(&one, 1), grad);
        s0.backward(0, grad, {});
        const std::span<float> parts[] = {s0.gradients(), s1.gradients()};
        dtfm::optim::clip_by_global_norm(std::span<const std::span<float>>(parts), 1.0f);
        o0.step(s0.parameters(), s0.gradients());
        o1.step(s1.parameters(), s1.gradients());
    }
    REQUIRE(first == Approx(std::log(16.0)).epsilon(0.05));
    REQUIRE(loss < 0.2f);
}
