// optim::adamw: two steps against values computed by hand (in fp64) from the update rule; the
// bias correction makes the first step lr·sign(g); zero weight decay is plain Adam; bad settings.
#include <catch2/catch.hpp>

#include <span>
#include <vector>

#include "dtfm/optim/adamw.hpp"

using dtfm::optim::adamw;
using dtfm::optim::adamw_options;

TEST_CASE("adamw satisfies the optimizer concept", "[adamw]") { STATIC_REQUIRE(dtfm::concepts::optimizer<adamw>); }

TEST_CASE("adamw: two steps against hand-computed values", "[adamw]") {
    adamw o(adamw_options{.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f});
    std::vector<float> p{1.0f};
    o.step(p, std::vector<float>{0.5f});
    // θ = 1·(1 − 0.01) − 0.1·(0.05/0.1)/(√(0.00025/0.001) + 1e-8)
    REQUIRE(p[0] == Approx(0.890000002).epsilon(1e-6));
    REQUIRE(o.first_moment()[0] == Approx(0.05f));
    REQUIRE(o.second_moment()[0] == Approx(0.00025f).epsilon(1e-4));  // 1 − 0.999f is not exact in fp32
    o.step(p, std::vector<float>{-1.0f});
    // m = −0.055, v = 0.00124975, m̂ = −0.055/0.19, v̂ = 0.00124975/0.001999
    REQUIRE(p[0] == Approx(0.9177103542205653).epsilon(1e-6));
    REQUIRE(o.steps() == 2);
}

TEST_CASE("adamw: the first step moves every parameter by lr against its gradient", "[adamw]") {
    adamw o(adamw_options{.lr = 0.01f, .weight_decay = 0.0f});
    std::vector<float> p{0.0f, 1.0f, -2.0f};
    o.step(p, std::vector<float>{3.0f, -0.001f, 100.0f});
    REQUIRE(p[0] == Approx(-0.01f));
    REQUIRE(p[1] == Approx(1.01f).epsilon(1e-4));  // |g| ≫ ε
    REQUIRE(p[2] == Approx(-2.01f));
    // Decoupled decay: a zero gradient still shrinks θ by lr·λ (no moment involved).
    adamw d(adamw_options{.lr = 0.5f, .weight_decay = 0.2f});
    std::vector<float> q{2.0f};
    d.step(q, std::vector<float>{0.0f});
    REQUIRE(q[0] == Approx(2.0f * 0.9f));
    d.set_learning_rate(0.0f);
    d.step(q, std::vector<float>{1.0f});
    REQUIRE(q[0] == Approx(1.8f));
    REQUIRE(d.learning_rate() == 0.0f);
}

TEST_CASE("adamw: restore continues like the original", "[adamw]") {
    adamw a(adamw_options{.lr = 0.05f}), b(adamw_options{.lr = 0.05f});
    std::vector<float> p{1.0f, 2.0f}, g{0.3f, -0.7f};
    a.step(p, g);
    std::vector<float> q = p;
    b.restore(a.steps(), a.first_moment(), a.second_moment());
    a.step(p, g);
    b.step(q, g);
    REQUIRE(p == q);
}

TEST_CASE("adamw rejects bad settings and mismatched sizes", "[adamw]") {
    REQUIRE_THROWS_AS(adamw(adamw_options{.lr = -1.0f}), dtfm::config_error);
    REQUIRE_THROWS_AS(adamw(adamw_options{.beta1 = 1.0f}), dtfm::config_error);
    REQUIRE_THROWS_AS(adamw(adamw_options{.beta2 = -0.1f}), dtfm::config_error);
    REQUIRE_THROWS_AS(adamw(adamw_options{.eps = 0.0f}), dtfm::config_error);
    REQUIRE_THROWS_AS(adamw(adamw_options{.weight_decay = -1.0f}), dtfm::config_error);
    adamw o;
    REQUIRE_THROWS_AS(o.set_learning_rate(-0.1f), dtfm::config_error);
    std::vector<float> p(3), g(2), g3(3), p4(4), g4(4);
    REQUIRE_THROWS_AS(o.step(p, g), dtfm::error);
    o.step(p, g3);
    REQUIRE_THROWS_AS(o.step(p4, g4), dtfm::error);
}
