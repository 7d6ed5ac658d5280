// nn::layer_norm: forward against the fp64 reference; dx, dγ, dβ against central differences of
// the reference (relative error ≤ 1e-5); dx accumulates into what the buffer held.
#include <catch2/catch.hpp>

#include <vector>

#include "dtfm/nn/layer_norm.hpp"
#include "reference.hpp"

TEST_CASE("layer_norm: forward and gradient check against fp64", "[nn][layer_norm]") {
    const std::size_t n = 4, c = 9;
    const auto x = ref::random_floats(n * c, 11, 2.0, 0.5), g = ref::random_floats(c, 12, 0.5, 1.0),
               b = ref::random_floats(c, 13, 0.1), dy = ref::random_floats(n * c, 14);
    std::vector<float> y(n * c), mean(n), rstd(n);
    dtfm::nn::layer_norm_forward(x, g, b, y, mean, rstd, n, c);
    ref::vec X = ref::to_double(x), G = ref::to_double(g), B = ref::to_double(b);
    const ref::vec Y = ref::layer_norm(X, G, B, n, c);
    for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(y[i] == Approx(Y[i]).epsilon(1e-5).margin(1e-5));

    std::vector<float> dx(n * c, 0.0f), dg(c, 0.0f), db(c, 0.0f);
    dtfm::nn::layer_norm_backward(x, g, mean, rstd, dy, dx, dg, db, n, c);
    const ref::vec DY = ref::to_double(dy);
    auto loss = [&] { return ref::dot(DY, ref::layer_norm(X, G, B, n, c)); };
    CHECK(ref::relative_error(dx, ref::numeric_gradient(X, loss)) < 1e-5);
    CHECK(ref::relative_error(dg, ref::numeric_gradient(G, loss)) < 1e-5);
    CHECK(ref::relative_error(db, ref::numeric_gradient(B, loss)) < 1e-5);

    std::vector<float> dx2(n * c, 1.0f), dg2(c, 0.0f), db2(c, 0.0f);
    dtfm::nn::layer_norm_backward(x, g, mean, rstd, dy, dx2, dg2, db2, n, c);
    for (std::size_t i = 0; i < dx.size(); ++i) REQUIRE(dx2[i] == Approx(dx[i] + 1.0f));
}
