#include <catch2/catch.hpp>

#include <string_view>

#include "dtfm/spaces.hpp"

namespace {
struct not_a_space {};
struct space_without_name {
    using memory_space_concept = dtfm::memory_space_tag;
};
struct space_with_wrong_tag {
    using memory_space_concept = dtfm::host_space;
    static constexpr const char* name() noexcept { return "wrong"; }
};
}  // namespace

TEST_CASE("host and cuda spaces are memory spaces, near misses are not", "[spaces]") {
    STATIC_REQUIRE(dtfm::concepts::memory_space<dtfm::host_space>);
    STATIC_REQUIRE(dtfm::concepts::memory_space<dtfm::cuda_space>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::memory_space<not_a_space>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::memory_space<space_without_name>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::memory_space<space_with_wrong_tag>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::memory_space<int>);
    REQUIRE(std::string_view(dtfm::host_space::name()) == "host");
    REQUIRE(std::string_view(dtfm::cuda_space::name()) == "cuda");
}

TEST_CASE("accessibility: each space reaches only its own memory", "[spaces]") {
    STATIC_REQUIRE(dtfm::space_accessible_v<dtfm::host_space, dtfm::host_space>);
    STATIC_REQUIRE(dtfm::space_accessible_v<dtfm::cuda_space, dtfm::cuda_space>);
    STATIC_REQUIRE_FALSE(dtfm::space_accessible_v<dtfm::host_space, dtfm::cuda_space>);
    STATIC_REQUIRE_FALSE(dtfm::space_accessible_v<dtfm::cuda_space, dtfm::host_space>);
    STATIC_REQUIRE(dtfm::host_copyable_v<dtfm::host_space, dtfm::host_space>);
    STATIC_REQUIRE_FALSE(dtfm::host_copyable_v<dtfm::host_space, dtfm::cuda_space>);
}
