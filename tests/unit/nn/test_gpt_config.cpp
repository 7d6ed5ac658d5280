// nn::gpt_config: the parameter count formula matches a built model; tiny() and small() sizes.
#include <catch2/catch.hpp>

#include "dtfm/nn/gpt_config.hpp"
#include "dtfm/nn/gpt_stage.hpp"

TEST_CASE("gpt_config: parameter_count matches the model, tiny and small sizes", "[nn][gpt_config]") {
    const auto tiny = dtfm::nn::gpt_config::tiny();
    REQUIRE(tiny.parameter_count() >= 5'000'000);
    REQUIRE(tiny.parameter_count() <= 10'000'000);
    // A built model of tiny's widths (one block, to keep the test fast) has as many parameters as counted.
    auto one_block = tiny;
    one_block.layers = 1;
    REQUIRE(dtfm::nn::gpt_stage(one_block, 0, 1, 1, 1).parameters().size() == one_block.parameter_count());
    REQUIRE(tiny.parameter_count() == 5'693'280);
    const auto small = dtfm::nn::gpt_config::small();
    REQUIRE(small.parameter_count() > tiny.parameter_count());
    REQUIRE_NOTHROW(small.validate());
    const dtfm::nn::gpt_config c{.vocab = 10, .context = 4, .d_model = 6, .heads = 2, .layers = 3, .seed = 0};
    REQUIRE(c.parameter_count() == 10 * 6 + 4 * 6 + 3 * (12 * 36 + 13 * 6) + 2 * 6 + 6 * 10);
    REQUIRE_THROWS_AS(dtfm::nn::gpt_config{.vocab = 0}.validate(), dtfm::config_error);
}
