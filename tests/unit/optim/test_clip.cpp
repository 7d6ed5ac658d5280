// optim::clip_by_global_norm: the norm of (3, 4, 12) is 13; clipping to 6.5 halves every part;
// under the limit nothing changes; a non-finite norm leaves the gradients as they are.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <span>
#include <vector>

#include "dtfm/optim/clip.hpp"

TEST_CASE("clip_by_global_norm: hand-computed norm and scaling across parts", "[clip]") {
    std::vector<float> a{3.0f, 4.0f}, b{12.0f};
    const std::span<float> parts[] = {a, b};
    REQUIRE(dtfm::optim::clip_by_global_norm(std::span<const std::span<float>>(parts), 6.5f) == Approx(13.0f));
    REQUIRE(a[0] == Approx(1.5f));
    REQUIRE(a[1] == Approx(2.0f));
    REQUIRE(b[0] == Approx(6.0f));
    REQUIRE(dtfm::optim::clip_by_global_norm(std::span<const std::span<float>>(parts), 6.5f) == Approx(6.5f));
    REQUIRE(b[0] == Approx(6.0f));  // now within the limit, up to the 1e-6 guard

    std::vector<float> g{0.3f, -0.4f};
    REQUIRE(dtfm::optim::clip_by_global_norm(g, 1.0f) == Approx(0.5f));
    REQUIRE(g == std::vector<float>{0.3f, -0.4f});
    REQUIRE(dtfm::optim::sum_of_squares(g) == Approx(0.25));
    REQUIRE(dtfm::optim::clip_coefficient(10.0, 5.0f) == Approx(0.5f));
}

TEST_CASE("clip_by_global_norm: a non-finite norm clips nothing, bad limits throw", "[clip]") {
    std::vector<float> g{1.0f, std::numeric_limits<float>::infinity()};
    REQUIRE(std::isinf(dtfm::optim::clip_by_global_norm(g, 1.0f)));
    REQUIRE(g[0] == 1.0f);
    REQUIRE_THROWS_AS(dtfm::optim::clip_by_global_norm(g, 0.0f), dtfm::config_error);
}
