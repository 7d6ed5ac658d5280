// stage: a conforming stage (a first stage reading token ids) satisfies it, near misses do not.
#include <catch2/catch.hpp>

#include <cstdint>
#include <span>
#include <vector>

#include "dtfm/concepts/stage.hpp"

namespace {

template <class Space = dtfm::host_space>
struct embedding_like {
    using stage_concept = dtfm::stage_tag;
    using memory_space = Space;
    using value_type = float;
    using input_type = std::int32_t;
    using output_type = float;
    std::vector<float> params = std::vector<float>(4), grads = std::vector<float>(4);
    std::span<float> parameters() { return params; }
    std::span<float> gradients() { return grads; }
    void forward(int, std::span<const std::int32_t>, std::span<float>) {}
    void backward(int, std::span<const float>, std::span<std::int32_t>) {}
};

struct no_gradients {
    using stage_concept = dtfm::stage_tag;
    using memory_space = dtfm::host_space;
    using value_type = float;
    using input_type = float;
    using output_type = float;
    std::span<float> parameters() { return {}; }
    void forward(int, std::span<const float>, std::span<float>) {}
    void backward(int, std::span<const float>, std::span<float>) {}
};

struct parameters_by_value : embedding_like<> {
    std::vector<float> parameters() { return params; }
};

struct forward_without_microbatch : embedding_like<> {
    void forward(std::span<const std::int32_t>, std::span<float>) {}
};

}  // namespace

TEST_CASE("stage: a conforming stage satisfies it, near misses do not", "[concepts][stage]") {
    STATIC_REQUIRE(dtfm::concepts::stage<embedding_like<>>);
    STATIC_REQUIRE(dtfm::concepts::stage<embedding_like<dtfm::cuda_space>>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::stage<embedding_like<int>>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::stage<no_gradients>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::stage<parameters_by_value>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::stage<forward_without_microbatch>);
}
