// nn::transformer_block: forward against the fp64 reference block; dx and every parameter's
// gradient against central differences of the reference (relative error ≤ 1e-4 per tensor);
// init_block's constants and scales.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "dtfm/nn/transformer_block.hpp"
#include "reference.hpp"

TEST_CASE("transformer_block: forward and gradient check against fp64", "[nn][transformer_block]") {
    const dtfm::nn::block_shape s{.batch = 2, .seq = 4, .d_model = 8, .heads = 2};
    dtfm::nn::transformer_block blk(s);
    const dtfm::nn::block_layout& l = blk.layout();
    REQUIRE(l.size == dtfm::nn::gpt_config::block_parameter_count(8));
    // Random parameters, larger than GPT-2's initial ones so every path carries gradient.
    std::vector<float> p = ref::random_floats(l.size, 61, 0.3);
    for (std::size_t i = 0; i < s.d_model; ++i) {
        p[l.ln1_gamma.offset + i] += 1.0f;
        p[l.ln2_gamma.offset + i] += 1.0f;
    }
    const auto x = ref::random_floats(s.rows() * s.d_model, 62), dy = ref::random_floats(s.rows() * s.d_model, 63);
    std::vector<float> y(x.size()), dx(x.size()), g(l.size, 0.0f);
    dtfm::nn::block_cache cache(s);
    blk.forward(p, x, y, cache);
    ref::vec X = ref::to_double(x), P = ref::to_double(p);
    const ref::vec Y = ref::block(X, P, s.batch, s.seq, s.heads, s.d_model);
    for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(y[i] == Approx(Y[i]).epsilon(1e-4).margin(1e-5));

    blk.backward(p, g, x, cache, dy, dx);
    const ref::vec DY = ref::to_double(dy);
    auto loss = [&] { return ref::dot(DY, ref::block(X, P, s.batch, s.seq, s.heads, s.d_model)); };
    CHECK(ref::relative_error(dx, ref::numeric_gradient(X, loss)) < 1e-4);
    const ref::vec num = ref::numeric_gradient(P, loss);
    const dtfm::nn::tensor_slice tensors[] = {l.ln1_gamma, l.ln1_beta, l.qkv_weight, l.qkv_bias, l.proj_weight, l.proj_bias,
                                              l.ln2_gamma, l.ln2_beta, l.fc_weight,  l.fc_bias,  l.out_weight,  l.out_bias};
    for (const auto& t : tensors) {
        INFO("tensor at offset " << t.offset);
        CHECK(ref::relative_error(t.of(std::span<const float>(g)), ref::part(num, t)) < 1e-4);
    }
}

TEST_CASE("init_block: GPT-2 initialisation, a function of seed and layer only", "[nn][transformer_block]") {
    const std::size_t d = 32, layers = 8;
    const dtfm::nn::block_layout l(d);
    std::vector<float> a(l.size), b(l.size), c(l.size);
    dtfm::nn::init_block(a, d, 7, 3, layers);
    dtfm::nn::init_block(b, d, 7, 3, layers);
    dtfm::nn::init_block(c, d, 7, 4, layers);
    REQUIRE(a == b);
    REQUIRE(a != c);
    auto stddev = [&](dtfm::nn::tensor_slice t) {
        double s = 0.0;
        for (float v : t.of(std::span<const float>(a))) s += static_cast<double>(v) * v;
        return std::sqrt(s / static_cast<double>(t.size));
    };
    REQUIRE(stddev(l.qkv_weight) == Approx(0.02).epsilon(0.05));
    REQUIRE(stddev(l.fc_weight) == Approx(0.02).epsilon(0.05));
    REQUIRE(stddev(l.out_weight) == Approx(0.02 / std::sqrt(2.0 * layers)).epsilon(0.05));
    REQUIRE(stddev(l.proj_weight) == Approx(0.02 / std::sqrt(2.0 * layers)).epsilon(0.1));
    for (float v : l.ln1_gamma.of(std::span<const float>(a))) REQUIRE(v == 1.0f);
    for (float v : l.ln2_beta.of(std::span<const float>(a))) REQUIRE(v == 0.0f);
    for (float v : l.fc_bias.of(std::span<const float>(a))) REQUIRE(v == 0.0f);
}
