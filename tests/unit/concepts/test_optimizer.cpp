// optimizer: plain SGD satisfies it, near misses do not.
#include <catch2/catch.hpp>

#include <cstddef>
#include <span>
#include <vector>

#include "dtfm/concepts/optimizer.hpp"

namespace {

struct sgd {
    using optimizer_concept = dtfm::optimizer_tag;
    using value_type = float;
    float lr = 0.5f;
    void step(std::span<float> params, std::span<const float> grads) {
        for (std::size_t i = 0; i < params.size(); ++i) params[i] -= lr * grads[i];
    }
};

struct grads_mutable {
    using optimizer_concept = dtfm::optimizer_tag;
    using value_type = float;
    void step(std::span<float>, std::span<float>) {}
};

struct returns_loss {
    using optimizer_concept = dtfm::optimizer_tag;
    using value_type = float;
    float step(std::span<float>, std::span<const float>) { return 0; }
};

struct untagged {
    using value_type = float;
    void step(std::span<float>, std::span<const float>) {}
};

}  // namespace

TEST_CASE("optimizer: SGD satisfies it, near misses do not", "[concepts][optimizer]") {
    STATIC_REQUIRE(dtfm::concepts::optimizer<sgd>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::optimizer<grads_mutable>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::optimizer<returns_loss>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::optimizer<untagged>);

    std::vector<float> params{1.0f, 2.0f};
    const std::vector<float> grads{2.0f, -2.0f};
    sgd opt;
    opt.step(params, grads);
    REQUIRE(params == std::vector<float>{0.0f, 3.0f});
}
