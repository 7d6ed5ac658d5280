// nn::gelu: the tanh form against fp64 over [−5, 5], its derivative against central differences
// (relative error ≤ 1e-5), and known values.
#include <catch2/catch.hpp>

#include <vector>

#include "dtfm/nn/gelu.hpp"
#include "reference.hpp"

TEST_CASE("gelu: forward and gradient check against fp64", "[nn][gelu]") {
    std::vector<float> x;
    for (int i = -50; i <= 50; ++i) x.push_back(0.1f * static_cast<float>(i));
    const auto dy = ref::random_floats(x.size(), 21);
    std::vector<float> y(x.size()), dx(x.size());
    dtfm::nn::gelu_forward(x, y);
    ref::vec X = ref::to_double(x);
    const ref::vec Y = ref::gelu(X);
    for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(y[i] == Approx(Y[i]).epsilon(1e-5).margin(1e-6));
    REQUIRE(y[50] == 0.0f);
    REQUIRE(y[60] == Approx(0.841192f).epsilon(1e-5));  // gelu_tanh(1)

    dtfm::nn::gelu_backward(x, dy, dx);
    const ref::vec DY = ref::to_double(dy);
    CHECK(ref::relative_error(dx, ref::numeric_gradient(X, [&] { return ref::dot(DY, ref::gelu(X)); })) < 1e-5);
}
