// The simulator's all-reduce message patterns against the real collectives running on threads over
// throttled<inproc> links: the predicted time is the time the emulation takes (never less; later
// by at most what a loaded 2-core machine may stall a thread). Latency-bound on purpose, so the
// count of sequential latencies, which is what a wrong pattern gets wrong, decides.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "dtfm/collective/compressed_allreduce.hpp"
#include "dtfm/collective/hierarchical.hpp"
#include "dtfm/collective/ring_allreduce.hpp"
#include "dtfm/compress/cocktail.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/plan/topology.hpp"
#include "dtfm/sim/simulator.hpp"
#include "dtfm/transport/inproc.hpp"
#include "dtfm/transport/link_model.hpp"
#include "dtfm/transport/throttled.hpp"

using namespace dtfm;
using clock_type = std::chrono::steady_clock;

namespace {

// Four devices in two regions (0, 1 | 2, 3): 10 ms and 2 Gbit/s inside, 40 ms and 1 Gbit/s across.
plan::topology two_regions() {
    std::vector<plan::device> devices;
    for (int i = 0; i < 4; ++i) devices.push_back({"gpu" + std::to_string(i), i < 2 ? "a" : "b", "test", 1e6, 0});
    std::vector<double> delay(16), bw(16);
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) {
            const bool same = (i < 2) == (j < 2);
            delay[std::size_t(i * 4 + j)] = same ? 10 : 40;
            bw[std::size_t(i * 4 + j)] = same ? 2 : 1;
        }
    return plan::topology::from_matrices(devices, delay, bw);
}

sim::gpt_config one_block() {
    sim::gpt_config c;
    c.layers = 1;
    c.d_model = 16;  // 3,280 parameters: the collectives' arithmetic is negligible even unoptimised
    c.heads = 4;
    c.sequence = 16;
    c.vocab = 0;
    return c;
}

// The simulated all-reduce of one stage on four replicas (compute is free), in ms.
double predicted_ms(sim::allreduce_kind kind, sim::codec c) {
    sim::sim_options o;
    o.efficiency = 1;
    o.allreduce = kind;
    o.allreduce_codec = std::move(c);
    return 1e3 * sim::simulate(two_regions(), 1, one_block(), o).allreduce_seconds.at(0);
}

// The slowest rank's all-reduce of the same buffer over throttled links, in ms from the first
// rank's start.
template <class Make>
double measured_ms(Make make) {
    const auto model = transport::link_model::from_topology(two_regions());
    const std::size_t n = sim::block_parameters(one_block());
    std::mutex m;
    clock_type::time_point first = clock_type::time_point::max(), last = clock_type::time_point::min();
    transport::run_inproc(4, [&](transport::inproc& world) {
        transport::throttled<transport::inproc> t(world.split(0, world.rank()), model);
        auto collective = make();
        std::vector<float> x(n, 1.0f);
        const auto start = clock_type::now();
        collective.allreduce_blocking(t, std::span<float>(x));
        const auto end = clock_type::now();
        std::lock_guard lock(m);
        first = std::min(first, start);
        last = std::max(last, end);
    });
    return std::chrono::duration<double, std::milli>(last - first).count();
}

// Under a sanitizer every thread runs several times slower and wakes late, so only the lower bound
// is checked there.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool timing_is_meaningful = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool timing_is_meaningful = false;
#else
constexpr bool timing_is_meaningful = true;
#endif
#else
constexpr bool timing_is_meaningful = true;
#endif

bool measured_near(double measured, double predicted) {
    if (measured < predicted - 1) return false;
    return !timing_is_meaningful || measured < predicted + std::max(50.0, 0.5 * predicted);
}

}  // namespace

TEST_CASE("sim vs throttled: ring all-reduce", "[sim][throttled]") {
    const double predicted = predicted_ms(sim::allreduce_kind::ring, sim::codec::none());
    // 6 steps; the ring 0→1→2→3→0 crosses regions twice, so no step is shorter than 10 ms.
    REQUIRE(predicted > 6 * 10);
    const double measured = measured_ms([] { return collective::ring_allreduce<float>(); });
    INFO("predicted " << predicted << " ms, measured " << measured << " ms");
    REQUIRE(measured_near(measured, predicted));
}

TEST_CASE("sim vs throttled: two-phase compressed all-reduce", "[sim][throttled]") {
    const double predicted = predicted_ms(sim::allreduce_kind::compressed, sim::codec::of<compress::quantize<8>>("q8"));
    REQUIRE(predicted > 2 * 40);
    REQUIRE(predicted < 3 * 40);
    const double measured = measured_ms([] { return collective::compressed_allreduce<compress::quantize<8>>(); });
    INFO("predicted " << predicted << " ms, measured " << measured << " ms");
    REQUIRE(measured_near(measured, predicted));
}

TEST_CASE("sim vs throttled: hierarchical all-reduce", "[sim][throttled]") {
    const double predicted = predicted_ms(sim::allreduce_kind::hierarchical, sim::codec::of<compress::cocktail<>>("cocktail"));
    // A 2-rank ring in a region (2 × 10 ms), the leaders' two phases (2 × 40 ms), one broadcast hop.
    REQUIRE(predicted > 2 * 10 + 2 * 40 + 10);
    REQUIRE(predicted < 2 * 10 + 2 * 40 + 10 + 20);
    const double measured = measured_ms([] { return collective::hierarchical<>(std::vector<int>{0, 0, 1, 1}); });
    INFO("predicted " << predicted << " ms, measured " << measured << " ms");
    REQUIRE(measured_near(measured, predicted));
}
