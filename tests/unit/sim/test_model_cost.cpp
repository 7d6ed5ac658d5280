// sim::model_cost: the FLOP, parameter and memory formulas on hand-computed cases, and the layer split.
#include <catch2/catch.hpp>

#include "dtfm/error.hpp"
#include "dtfm/schedule/gpipe.hpp"
#include "dtfm/schedule/one_f_one_b.hpp"
#include "dtfm/sim/model_cost.hpp"

using namespace dtfm::sim;

TEST_CASE("model cost: block FLOPs, parameters and boundary size by hand", "[sim][model_cost]") {
    gpt_config c;
    c.layers = 4;
    c.d_model = 64;
    c.heads = 4;
    c.sequence = 16;
    c.vocab = 100;
    c.microbatch_size = 2;
    // 24·b·s·d² + 4·b·s²·d = 24·2·16·4096 + 4·2·256·64
    REQUIRE(block_forward_flops(c) == Approx(3145728.0 + 131072.0));
    REQUIRE(head_forward_flops(c) == Approx(2.0 * 2 * 16 * 64 * 100));
    REQUIRE(block_parameters(c) == 12 * 64 * 64 + 13 * 64);
    REQUIRE(embedding_parameters(c) == (100 + 16) * 64);
    REQUIRE(head_parameters(c) == 100 * 64 + 2 * 64);
    REQUIRE(boundary_elements(c) == 2 * 16 * 64);
    REQUIRE(boundary_bytes(c) == 4.0 * 2 * 16 * 64);
    // s·b·d·(34 + 5·a·s/d) at 16-bit activations: 16·2·64·(34 + 5) bytes
    REQUIRE(block_activation_bytes(c) == Approx(16.0 * 2 * 64 * 39));
}

TEST_CASE("model cost: GPT-3 1.3B has about 1.4 billion parameters in 8 stages", "[sim][model_cost]") {
    const auto c = gpt_config::gpt3_1_3b();
    REQUIRE(total_parameters(c) == Approx(1.42e9).epsilon(0.01));
    const auto st = stage_costs(c, 8);
    REQUIRE(st.size() == 8);
    double sum = 0;
    for (const auto& s : st) {
        REQUIRE(s.layers == 3);
        REQUIRE(s.backward_flops == Approx(2 * s.forward_flops));
        sum += static_cast<double>(s.parameters);
    }
    REQUIRE(sum == Approx(total_parameters(c)));
    REQUIRE(st[0].embedding);
    REQUIRE(st[7].head);
    REQUIRE(st[7].forward_flops == Approx(3 * block_forward_flops(c) + head_forward_flops(c)));
    // The fp32 gradient of a middle stage is DT-FM's c_dp (0.65 GB) to within 10%.
    REQUIRE(gradient_bytes(st[3]) == Approx(0.65e9).epsilon(0.1));
}

TEST_CASE("model cost: layers split evenly, the first stages take the remainder", "[sim][model_cost]") {
    gpt_config c;
    c.layers = 10;
    const auto st = stage_costs(c, 4);
    REQUIRE(st[0].layers == 3);
    REQUIRE(st[1].layers == 3);
    REQUIRE(st[2].layers == 2);
    REQUIRE(st[3].layers == 2);
    REQUIRE(st[2].first_layer == 6);
    REQUIRE_THROWS_AS(stage_costs(c, 11), dtfm::config_error);
    REQUIRE_THROWS_AS(stage_costs(c, 0), dtfm::config_error);
    c.heads = 3;  // 2048 is not divisible by 3
    REQUIRE_THROWS_AS(stage_costs(c, 2), dtfm::config_error);
}

TEST_CASE("model cost: GPipe holds M micro-batches, 1F1B holds S minus s", "[sim][model_cost]") {
    const auto c = gpt_config::gpt3_1_3b();
    const auto st = stage_costs(c, 8);
    const double state = static_cast<double>(st[0].parameters) * 16;
    const int gpipe_held = dtfm::schedule::gpipe::in_flight(0, 8, 128);
    const int ofob_held = dtfm::schedule::one_f_one_b::in_flight(0, 8, 128);
    REQUIRE(gpipe_held == 128);
    REQUIRE(ofob_held == 8);
    REQUIRE(stage_memory_bytes(c, st[0], ofob_held) == Approx(state + 8 * st[0].activation_bytes_per_microbatch));
    // GPipe's 128 micro-batches do not fit a 32 GiB V100; 1F1B's 8 do.
    REQUIRE(stage_memory_bytes(c, st[0], gpipe_held) > 32.0 * (1 << 30));
    REQUIRE(stage_memory_bytes(c, st[0], ofob_held) < 32.0 * (1 << 30));
}
