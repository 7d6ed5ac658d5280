// plan::communication_cost: DT-FM's DP + 2·PP on a 4-device case computed by hand, the direction of
// pipeline links, and placements that are not a rectangle of distinct devices.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "dtfm/plan/cost_model.hpp"
#include "dtfm/plan/topology.hpp"

using Catch::Matchers::Contains;
using dtfm::plan::communication_cost;
using dtfm::plan::cost_params;
using dtfm::plan::placement;
using dtfm::plan::topology;

namespace {

// Four devices. Delay (ms) is symmetric: 0-1 10, 0-2 2, 0-3 40, 1-2 30, 1-3 4, 2-3 20.
// Bandwidth (Gbps) is symmetric except 2→3 = 1.6 and 3→2 = 0.8:
// 0-1 1, 0-2 10, 0-3 0.5, 1-2 2, 1-3 5.
topology four_devices() {
    const double d = 0;  // diagonal: ignored
    std::vector<double> delay{d, 10, 2, 40,  //
                              10, d, 30, 4,  //
                              2, 30, d, 20,  //
                              40, 4, 20, d};
    std::vector<double> bandwidth{d, 1, 10, 0.5,  //
                                  1, d, 2, 5,     //
                                  10, 2, d, 1.6,  //
                                  0.5, 5, 0.8, d};
    std::vector<dtfm::plan::device> devices;
    for (int i = 0; i < 4; ++i) devices.push_back({"gpu" + std::to_string(i), "r0", "", 0, 0});
    return topology::from_matrices(std::move(devices), std::move(delay), std::move(bandwidth), "four");
}

std::string config_error_of(const topology& t, const placement& p) {
    try {
        (void)communication_cost(t, p);
    } catch (const dtfm::config_error& e) {
        return e.what();
    }
    FAIL("communication_cost accepted the placement");
    return {};
}

}  // namespace

TEST_CASE("cost model: a 4-device case computed by hand", "[plan][cost]") {
    const topology t = four_devices();
    // c_dp = 0.65 GB, c_pp = 0.471 GB, D = 2 replicas, so 8·c_dp/D = 2.6 and 8·c_pp = 3.768.
    //
    // Pipelines 0→1 and 2→3: stage groups {0, 2} and {1, 3}.
    //   DP {0,2}: device 0: 2·(0.002 + 2.6/10) = 0.524; device 2 the same (symmetric link).
    //   DP {1,3}: device 1: 2·(0.004 + 2.6/5) = 1.048; device 3 the same.      DP = 1.048
    //   PP boundary 0: link 0→1: 0.010 + 3.768/1 = 3.778; link 2→3: 0.020 + 3.768/1.6 = 2.375.
    //                                                                       PP = 3.778
    //   total = 1.048 + 2·3.778 = 8.604
    const auto a = communication_cost(t, placement{{{0, 1}, {2, 3}}});
    CHECK(a.dp == Approx(1.048).epsilon(1e-12));
    CHECK(a.pp == Approx(3.778).epsilon(1e-12));
    CHECK(a.total == Approx(8.604).epsilon(1e-12));

    // Pipelines 0→2 and 1→3: stage groups {0, 1} and {2, 3}.
    //   DP {0,1}: 2·(0.010 + 2.6/1) = 5.22 for both devices.
    //   DP {2,3}: device 2 sends over 2→3: 2·(0.020 + 2.6/1.6) = 3.29;
    //             device 3 sends over 3→2: 2·(0.020 + 2.6/0.8) = 6.54.             DP = 6.54
    //   PP: link 0→2: 0.002 + 3.768/10 = 0.3788; link 1→3: 0.004 + 3.768/5 = 0.7576.  PP = 0.7576
    //   total = 6.54 + 2·0.7576 = 8.0552
    const auto b = communication_cost(t, placement{{{0, 2}, {1, 3}}});
    CHECK(b.dp == Approx(6.54).epsilon(1e-12));
    CHECK(b.pp == Approx(0.7576).epsilon(1e-12));
    CHECK(b.total == Approx(8.0552).epsilon(1e-12));
}

TEST_CASE("cost model: pipeline links are read in the direction activations flow", "[plan][cost]") {
    const topology t = four_devices();
    // Pipelines 1→0 and 3→2: the same groups as 0→1, 2→3, so the same DP = 1.048, but replica 1
    // now sends over 3→2: 0.020 + 3.768/0.8 = 4.73 > 1→0's 3.778.   total = 1.048 + 2·4.73 = 10.508
    const auto c = communication_cost(t, placement{{{1, 0}, {3, 2}}});
    CHECK(c.dp == Approx(1.048).epsilon(1e-12));
    CHECK(c.pp == Approx(4.73).epsilon(1e-12));
    CHECK(c.total == Approx(10.508).epsilon(1e-12));
}

TEST_CASE("cost model: the volumes scale their own terms", "[plan][cost]") {
    const topology t = four_devices();
    const placement p{{{0, 1}, {2, 3}}};
    // No gradient bytes: DP is delay only, 2·0.004 on {1,3}; no activation bytes: PP is the larger
    // delay, 0.020 on 2→3.
    const auto c = communication_cost(t, p, cost_params{0, 0});
    CHECK(c.dp == Approx(0.008).epsilon(1e-12));
    CHECK(c.pp == Approx(0.020).epsilon(1e-12));
    // One replica has no data-parallel partner; one stage has no boundary.
    CHECK(communication_cost(t, placement{{{0, 1, 2, 3}}}).dp == 0);
    CHECK(communication_cost(t, placement{{{0}, {1}, {2}, {3}}}).pp == 0);
}

TEST_CASE("cost model: a placement must be a rectangle of distinct devices", "[plan][cost]") {
    const topology t = four_devices();
    CHECK_THAT(config_error_of(t, placement{}), Contains("at least one replica"));
    CHECK_THAT(config_error_of(t, placement{{{0, 1}, {2}}}), Contains("pipeline 1 has 1 stages"));
    CHECK_THAT(config_error_of(t, placement{{{0, 4}}}), Contains("pipelines[0][1] = 4") && Contains("not a device"));
    CHECK_THAT(config_error_of(t, placement{{{0, -1}}}), Contains("pipelines[0][1] = -1"));
    CHECK_THAT(config_error_of(t, placement{{{0, 1}, {1, 2}}}), Contains("pipelines[1][0] = 1") && Contains("twice"));
    try {
        (void)communication_cost(t, placement{{{0, 1}}}, cost_params{-1, 0.5});
        FAIL("negative volume accepted");
    } catch (const dtfm::config_error& e) {
        CHECK_THAT(std::string(e.what()), Contains("non-negative"));
    }
}
