// nn::causal_attention: forward against the fp64 reference; dQ, dK, dV against central
// differences of the reference (relative error ≤ 1e-5); the mask: no position sees the future.
#include <catch2/catch.hpp>

#include <vector>

#include "dtfm/nn/attention.hpp"
#include "reference.hpp"

TEST_CASE("causal_attention: forward and gradient check against fp64", "[nn][attention]") {
    const dtfm::nn::attention_shape s{.batch = 2, .seq = 5, .heads = 2, .d_model = 6};
    const auto qkv = ref::random_floats(s.rows() * 3 * s.d_model, 31);
    const auto dout = ref::random_floats(s.rows() * s.d_model, 32);
    std::vector<float> out(s.rows() * s.d_model), probs(s.probs_size());
    dtfm::nn::causal_attention_forward(qkv, out, probs, s);
    ref::vec Q = ref::to_double(qkv);
    const ref::vec O = ref::attention(Q, s.batch, s.seq, s.heads, s.d_model);
    for (std::size_t i = 0; i < out.size(); ++i) REQUIRE(out[i] == Approx(O[i]).epsilon(1e-5).margin(1e-6));
    for (std::size_t i = 0; i < s.seq; ++i)
        for (std::size_t j = i + 1; j < s.seq; ++j) REQUIRE(probs[i * s.seq + j] == 0.0f);

    std::vector<float> dqkv(qkv.size()), scratch(s.seq * s.seq);
    dtfm::nn::causal_attention_backward(qkv, probs, dout, dqkv, scratch, s);
    const ref::vec D = ref::to_double(dout);
    auto loss = [&] { return ref::dot(D, ref::attention(Q, s.batch, s.seq, s.heads, s.d_model)); };
    CHECK(ref::relative_error(dqkv, ref::numeric_gradient(Q, loss)) < 1e-5);
}

TEST_CASE("causal_attention: the first position attends only to itself", "[nn][attention]") {
    const dtfm::nn::attention_shape s{.batch = 1, .seq = 3, .heads = 1, .d_model = 2};
    const auto qkv = ref::random_floats(s.rows() * 3 * s.d_model, 33);
    std::vector<float> out(s.rows() * s.d_model), probs(s.probs_size());
    dtfm::nn::causal_attention_forward(qkv, out, probs, s);
    REQUIRE(out[0] == Approx(qkv[4]));  // v of position 0
    REQUIRE(out[1] == Approx(qkv[5]));
    const dtfm::nn::attention_shape bad{.batch = 1, .seq = 3, .heads = 4, .d_model = 6};
    REQUIRE_THROWS_AS(dtfm::nn::causal_attention_forward(qkv, out, probs, bad), dtfm::error);
}
