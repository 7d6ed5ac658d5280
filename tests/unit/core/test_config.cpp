#include <catch2/catch.hpp>

#include "dtfm/config.hpp"

namespace {
DTFM_HOST_DEVICE int twice(int x) { return 2 * x; }
}  // namespace

TEST_CASE("version macros and the version constant agree", "[config]") {
    STATIC_REQUIRE(dtfm::version.major == DTFM_VERSION_MAJOR);
    STATIC_REQUIRE(dtfm::version.minor == DTFM_VERSION_MINOR);
    STATIC_REQUIRE(dtfm::version.patch == DTFM_VERSION_PATCH);
    STATIC_REQUIRE(DTFM_VERSION == DTFM_VERSION_MAJOR * 10000 + DTFM_VERSION_MINOR * 100 + DTFM_VERSION_PATCH);
}

TEST_CASE("DTFM_HOST_DEVICE functions are ordinary inline functions without nvcc", "[config]") {
    STATIC_REQUIRE(DTFM_DEVICE_COMPILER == 0);
    REQUIRE(twice(21) == 42);
}

TEST_CASE("component macros default to off in a core-only build", "[config]") {
    // The unit tests link only dtfm::dtfm, so neither component is announced.
    STATIC_REQUIRE(DTFM_HAS_MPI == 0);
    STATIC_REQUIRE(DTFM_HAS_CUDA == 0);
}
