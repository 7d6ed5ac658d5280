// optim::warmup_cosine: linear warm-up, the cosine's midpoint and end, the floor after it.
#include <catch2/catch.hpp>

#include "dtfm/optim/schedule.hpp"

TEST_CASE("warmup_cosine: warm-up, cosine decay and floor at hand-computed steps", "[schedule]") {
    const dtfm::optim::warmup_cosine s{.peak_lr = 1.0f, .min_lr = 0.1f, .warmup_steps = 4, .total_steps = 14};
    REQUIRE_NOTHROW(s.validate());
    REQUIRE(s(0) == Approx(0.25f));
    REQUIRE(s(1) == Approx(0.5f));
    REQUIRE(s(3) == Approx(1.0f));
    REQUIRE(s(4) == Approx(1.0f));                          // decay starts at the peak
    REQUIRE(s(9) == Approx(0.55f));                         // halfway: min + (peak − min)/2
    REQUIRE(s(6) == Approx(0.1f + 0.45f * (1.0f + 0.809017f)));  // cos(π/5) = 0.809017
    REQUIRE(s(14) == Approx(0.1f));
    REQUIRE(s(1000) == Approx(0.1f));
    for (std::size_t i = 4; i < 14; ++i) REQUIRE(s(i + 1) <= s(i));
}

TEST_CASE("warmup_cosine: no warm-up, and bad settings", "[schedule]") {
    const dtfm::optim::warmup_cosine s{.peak_lr = 2.0f, .min_lr = 0.0f, .warmup_steps = 0, .total_steps = 2};
    REQUIRE(s(0) == Approx(2.0f));
    REQUIRE(s(1) == Approx(1.0f));
    REQUIRE(s(2) == Approx(0.0f).margin(1e-7));
    REQUIRE_THROWS_AS((dtfm::optim::warmup_cosine{.peak_lr = 1.0f, .min_lr = 2.0f}.validate()), dtfm::config_error);
    REQUIRE_THROWS_AS((dtfm::optim::warmup_cosine{.warmup_steps = 5, .total_steps = 4}.validate()), dtfm::config_error);
}
