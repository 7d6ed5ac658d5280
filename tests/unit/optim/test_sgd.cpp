// optim::sgd: plain, heavy-ball and Nesterov updates against hand-computed values; bad settings.
#include <catch2/catch.hpp>

#include <span>
#include <vector>

#include "dtfm/optim/sgd.hpp"

using dtfm::optim::sgd;
using dtfm::optim::sgd_options;

TEST_CASE("sgd satisfies the optimizer concept", "[sgd]") { STATIC_REQUIRE(dtfm::concepts::optimizer<sgd>); }

TEST_CASE("sgd: plain step with weight decay", "[sgd]") {
    sgd o(sgd_options{.lr = 0.5f, .weight_decay = 0.1f});
    std::vector<float> p{1.0f, -2.0f};
    const std::vector<float> g{0.5f, 1.0f};
    o.step(p, g);
    REQUIRE(p[0] == Approx(1.0f - 0.5f * (0.5f + 0.1f)));
    REQUIRE(p[1] == Approx(-2.0f - 0.5f * (1.0f - 0.2f)));
}

TEST_CASE("sgd: heavy-ball and Nesterov momentum", "[sgd]") {
    const std::vector<float> g{1.0f};
    sgd heavy(sgd_options{.lr = 0.1f, .momentum = 0.9f});
    sgd nesterov(sgd_options{.lr = 0.1f, .momentum = 0.9f, .nesterov = true});
    std::vector<float> a{0.0f}, b{0.0f};
    heavy.step(a, g);     // v = 1
    heavy.step(a, g);     // v = 1.9
    nesterov.step(b, g);  // v = 1, step g + 0.9 v = 1.9
    nesterov.step(b, g);  // v = 1.9, step 1 + 1.71 = 2.71
    REQUIRE(a[0] == Approx(-0.1f - 0.19f));
    REQUIRE(b[0] == Approx(-0.19f - 0.271f));
    REQUIRE(heavy.velocity()[0] == Approx(1.9f));
}

TEST_CASE("sgd rejects bad settings and mismatched sizes", "[sgd]") {
    REQUIRE_THROWS_AS(sgd(sgd_options{.lr = -1.0f}), dtfm::config_error);
    REQUIRE_THROWS_AS(sgd(sgd_options{.lr = 0.1f, .momentum = 1.0f}), dtfm::config_error);
    REQUIRE_THROWS_AS(sgd(sgd_options{.lr = 0.1f, .nesterov = true}), dtfm::config_error);
    sgd o(sgd_options{.lr = 0.1f, .momentum = 0.5f});
    std::vector<float> p(3), g(2);
    REQUIRE_THROWS_AS(o.step(p, g), dtfm::error);
    std::vector<float> g3(3);
    o.step(p, g3);
    std::vector<float> p4(4), g4(4);
    REQUIRE_THROWS_AS(o.step(p4, g4), dtfm::error);
}
