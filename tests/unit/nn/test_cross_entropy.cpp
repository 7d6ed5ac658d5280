// nn::cross_entropy: the mean loss against fp64, dlogits (with a scale) against central
// differences of the reference (relative error ≤ 1e-5), and log V for uniform logits.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "dtfm/nn/cross_entropy.hpp"
#include "reference.hpp"

TEST_CASE("cross_entropy: loss and gradient check against fp64", "[nn][cross_entropy]") {
    const std::size_t n = 6, V = 7;
    const auto z = ref::random_floats(n * V, 51, 3.0);
    const std::vector<std::int32_t> y{0, 6, 3, 3, 1, 5};
    std::vector<float> probs(n * V), dz(n * V);
    const float loss = dtfm::nn::cross_entropy_forward(z, y, probs, n, V);
    ref::vec Z = ref::to_double(z);
    REQUIRE(loss == Approx(ref::cross_entropy(Z, y, n, V)).epsilon(1e-6));
    const float scale = 0.7f;
    dtfm::nn::cross_entropy_backward(probs, y, scale, dz, n, V);
    const ref::vec num = ref::numeric_gradient(Z, [&] { return scale * ref::cross_entropy(Z, y, n, V); });
    CHECK(ref::relative_error(dz, num) < 1e-5);
}

TEST_CASE("cross_entropy: uniform logits cost log V, and ids are checked", "[nn][cross_entropy]") {
    const std::size_t n = 2, V = 5;
    std::vector<float> z(n * V, 3.0f), probs(n * V);
    const std::vector<std::int32_t> y{1, 4};
    REQUIRE(dtfm::nn::cross_entropy_forward(z, y, z, n, V) == Approx(std::log(5.0)));  // in place
    REQUIRE(z[0] == Approx(0.2f));
    const std::vector<std::int32_t> bad{1, 5};
    REQUIRE_THROWS_AS(dtfm::nn::cross_entropy_forward(z, bad, probs, n, V), dtfm::error);
}
