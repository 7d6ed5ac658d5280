// A topology file drives throttled<T>: the links between two devices of a DT-FM scenario are the
// ones the scenario gives (case 3: 5 Gbit/s and 1 ms inside a site, 1.12 Gbit/s and 11 ms across).
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <vector>

#include "dtfm/plan/topology.hpp"
#include "dtfm/transport/inproc.hpp"
#include "dtfm/transport/link_model.hpp"
#include "dtfm/transport/throttled.hpp"

using namespace dtfm::transport;

namespace {

// Rank 0 (on device `from`) sends `bytes` to rank 1 (on device `to`); the emulated arrival in ms.
double emulated_ms(const link_model& model, int from, int to, std::size_t bytes) {
    double arrival_ms = 0;
    run_inproc(2, [&](inproc& world) {
        throttled<inproc> t(world.split(0, world.rank()), model, {from, to});
        std::vector<std::byte> buf(bytes);
        if (t.rank() == 0) {
            auto s = t.isend(1, {dtfm::channel::user, 0}, buf);
            const auto& when = t.last_schedule();
            arrival_ms = std::chrono::duration<double, std::milli>(when.arrival - when.start).count();
            s.wait();
        } else {
            t.irecv(0, {dtfm::channel::user, 0}, buf).wait();
        }
    });
    return arrival_ms;
}

}  // namespace

TEST_CASE("throttled links from a scenario file", "[plan][throttled]") {
    const auto topo = dtfm::plan::load_topology(std::filesystem::path(DTFM_SCENARIO_DIR) /
                                                "dtfm-case3-multi-datacenter.json");
    const auto model = link_model::from_topology(topo);
    REQUIRE(model.devices() == 64);
    // 1.12 MB across sites: 8 ms at 1.12 Gbit/s plus 11 ms; inside a site 1.792 ms plus 1 ms.
    REQUIRE(emulated_ms(model, 0, 40, 1'120'000) == Approx(19.0).margin(0.01));
    REQUIRE(emulated_ms(model, 0, 1, 1'120'000) == Approx(2.792).margin(0.01));
}
