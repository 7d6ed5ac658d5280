// nn::embedding: forward against the fp64 reference; dwte and dwpe (repeated tokens add up)
// against central differences of the reference (relative error ≤ 1e-5); ids out of range throw.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "dtfm/nn/embedding.hpp"
#include "reference.hpp"

TEST_CASE("embedding: forward and gradient check against fp64", "[nn][embedding]") {
    const dtfm::nn::embedding_shape s{.batch = 2, .seq = 3, .vocab = 5, .d_model = 4};
    const std::vector<std::int32_t> tokens{1, 4, 1, 0, 1, 3};
    const auto wte = ref::random_floats(s.vocab * s.d_model, 41), wpe = ref::random_floats(s.seq * s.d_model, 42);
    const auto dout = ref::random_floats(s.batch * s.seq * s.d_model, 43);
    std::vector<float> out(s.batch * s.seq * s.d_model);
    dtfm::nn::embedding_forward(tokens, wte, wpe, out, s);
    ref::vec E = ref::to_double(wte), P = ref::to_double(wpe);
    const ref::vec O = ref::embedding(tokens, E, P, s.batch, s.seq, s.d_model);
    for (std::size_t i = 0; i < out.size(); ++i) REQUIRE(out[i] == Approx(O[i]));

    std::vector<float> dwte(wte.size()), dwpe(wpe.size());
    dtfm::nn::embedding_backward(tokens, dout, dwte, dwpe, s);
    const ref::vec D = ref::to_double(dout);
    auto loss = [&] { return ref::dot(D, ref::embedding(tokens, E, P, s.batch, s.seq, s.d_model)); };
    CHECK(ref::relative_error(dwte, ref::numeric_gradient(E, loss)) < 1e-5);
    CHECK(ref::relative_error(dwpe, ref::numeric_gradient(P, loss)) < 1e-5);
    for (std::size_t i = 0; i < s.d_model; ++i) REQUIRE(dwte[2 * s.d_model + i] == 0.0f);  // token 2 never seen

    const std::vector<std::int32_t> bad{1, 4, 5, 0, 1, 3};
    REQUIRE_THROWS_AS(dtfm::nn::embedding_forward(bad, wte, wpe, out, s), dtfm::error);
    const std::vector<std::int32_t> negative{1, 4, -1, 0, 1, 3};
    REQUIRE_THROWS_AS(dtfm::nn::embedding_backward(negative, dout, dwte, dwpe, s), dtfm::error);
}
