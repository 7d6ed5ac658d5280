// nn::linear: forward against the fp64 reference; dx, dW and db against central differences of
// the reference (relative error ≤ 1e-5 of the largest entry); gradients accumulate.
#include <catch2/catch.hpp>

#include <vector>

#include "dtfm/nn/linear.hpp"
#include "reference.hpp"

TEST_CASE("linear: forward and gradient check against fp64", "[nn][linear]") {
    const std::size_t n = 5, in = 7, out = 6;
    const auto x = ref::random_floats(n * in, 1), w = ref::random_floats(in * out, 2, 0.3), b = ref::random_floats(out, 3);
    const auto dy = ref::random_floats(n * out, 4);
    std::vector<float> y(n * out);
    dtfm::nn::linear_forward(x, w, b, y, n, in, out);
    ref::vec X = ref::to_double(x), W = ref::to_double(w), B = ref::to_double(b);
    const ref::vec Y = ref::linear(X, W, B, n, in, out);
    for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(y[i] == Approx(Y[i]).epsilon(1e-5).margin(1e-6));

    std::vector<float> dx(n * in), dw(in * out), db(out);
    dtfm::nn::linear_backward(x, w, dy, dx, dw, db, n, in, out);
    const ref::vec DY = ref::to_double(dy);
    auto loss = [&] { return ref::dot(DY, ref::linear(X, W, B, n, in, out)); };
    CHECK(ref::relative_error(dx, ref::numeric_gradient(X, loss)) < 1e-5);
    CHECK(ref::relative_error(dw, ref::numeric_gradient(W, loss)) < 1e-5);
    CHECK(ref::relative_error(db, ref::numeric_gradient(B, loss)) < 1e-5);

    // A second backward adds the same parameter gradients; dx is overwritten.
    const std::vector<float> dw1 = dw, db1 = db, dx1 = dx;
    dtfm::nn::linear_backward(x, w, dy, dx, dw, db, n, in, out);
    for (std::size_t i = 0; i < dw.size(); ++i) REQUIRE(dw[i] == Approx(2 * dw1[i]));
    for (std::size_t i = 0; i < db.size(); ++i) REQUIRE(db[i] == Approx(2 * db1[i]));
    REQUIRE(dx == dx1);
}

TEST_CASE("linear: without a bias, and shape errors", "[nn][linear]") {
    const std::size_t n = 3, in = 4, out = 2;
    const auto x = ref::random_floats(n * in, 5), w = ref::random_floats(in * out, 6);
    std::vector<float> y(n * out);
    dtfm::nn::linear_forward(x, w, {}, y, n, in, out);
    const ref::vec Y = ref::linear(ref::to_double(x), ref::to_double(w), {}, n, in, out);
    for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(y[i] == Approx(Y[i]).epsilon(1e-5).margin(1e-6));
    std::vector<float> short_y(n * out - 1);
    REQUIRE_THROWS_AS(dtfm::nn::linear_forward(x, w, {}, short_y, n, in, out), dtfm::error);
}
