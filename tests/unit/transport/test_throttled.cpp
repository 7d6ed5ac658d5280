// throttled<T> on inproc: latency, bandwidth, FIFO sharing of a link, independent links, the NIC
// cap, per-direction links, the time scale, topologies and device placement. The emulated
// schedule is checked exactly; measured arrival times with tolerances a loaded 2-core machine
// keeps (the precise accuracy figures are in dtfm_bench_transport).
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <vector>

#include "dtfm/transport/inproc.hpp"
#include "dtfm/transport/throttled.hpp"
#include "../../support/transport_suite.hpp"

using namespace dtfm::transport;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using dtfm::message_tag;
using dtfm::test::bytes_of;

namespace {

double ms(clock_type::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// An emulated arrival, in ms after the first message of the test started onto its link: exact.
bool arrives_at(double emulated, double expected) { return emulated >= expected - 0.01 && emulated <= expected + 0.01; }

// A measured arrival: never early; late by at most what a loaded 2-core machine may stall a
// thread (the precise figures are in dtfm_bench_transport).
bool measured_near(double measured, double expected) {
    return measured >= expected && measured < expected + std::max(50.0, 0.5 * expected);
}

// Rank 0 sends `sizes` to rank `to` back to back; returns, per message, the emulated arrival and
// the measured arrival at the receiver, both in ms after the first send.
struct timing {
    std::vector<double> emulated, measured;
};

timing send_and_time(int ranks, const link_model& model, std::vector<std::size_t> sizes, int to = 1,
                     std::vector<int> devices = {}) {
    timing out;
    clock_type::time_point start;
    run_inproc(ranks, [&](inproc& world) {
        throttled<inproc> t(world.split(0, world.rank()), model, devices);
        const message_tag tag{dtfm::channel::user, 1};
        if (t.rank() == 0) {
            std::vector<std::vector<std::byte>> payloads;
            for (auto n : sizes) payloads.emplace_back(n);
            std::vector<throttled<inproc>::request_type> sends;
            start = clock_type::now();
            clock_type::time_point first_start{};
            for (auto& p : payloads) {
                sends.push_back(t.isend(to, tag, p));
                if (sends.size() == 1) first_start = t.last_schedule().start;
                out.emulated.push_back(ms(t.last_arrival() - first_start));
            }
            for (auto& s : sends) s.wait();
        } else if (t.rank() == to) {
            for (auto n : sizes) {
                std::vector<std::byte> in(n);
                t.irecv(0, tag, in).wait();
                out.measured.push_back(ms(clock_type::now() - start));
            }
        }
    });
    return out;
}

}  // namespace

TEST_CASE("throttled: a small message arrives one latency later", "[throttled]") {
    const auto t = send_and_time(2, link_model::uniform(2, 20.0, 1.0), {8});
    REQUIRE(arrives_at(t.emulated[0], 20.0));
    CHECK(measured_near(t.measured[0], 20.0));
}

TEST_CASE("throttled: a large message takes bytes / bandwidth plus the latency", "[throttled]") {
    // 1 MB at 100 Mbit/s is 80 ms.
    const auto t = send_and_time(2, link_model::uniform(2, 1.0, 0.1), {1'000'000});
    REQUIRE(arrives_at(t.emulated[0], 81.0));
    CHECK(measured_near(t.measured[0], 81.0));
}

TEST_CASE("throttled: messages on one link queue and share its bandwidth", "[throttled]") {
    const auto t = send_and_time(2, link_model::uniform(2, 1.0, 0.1), {500'000, 500'000, 500'000});
    REQUIRE(arrives_at(t.emulated[0], 41.0));
    REQUIRE(arrives_at(t.emulated[1], 81.0));
    REQUIRE(arrives_at(t.emulated[2], 121.0));
    CHECK(measured_near(t.measured[2], 121.0));
}

TEST_CASE("throttled: links to different peers run in parallel unless the NIC caps them", "[throttled]") {
    for (bool capped : {false, true}) {
        auto model = link_model::uniform(3, 1.0, 0.1);
        if (capped) model.with_nic_cap(0.1);
        std::vector<throttled<inproc>::schedule> sent;
        run_inproc(3, [&](inproc& world) {
            throttled<inproc> t(world.split(0, world.rank()), model);
            const message_tag tag{dtfm::channel::user, 2};
            std::vector<std::byte> buf(500'000);
            if (t.rank() == 0) {
                auto a = t.isend(1, tag, buf);
                sent.push_back(t.last_schedule());
                auto b = t.isend(2, tag, buf);
                sent.push_back(t.last_schedule());
                a.wait();
                b.wait();
            } else {
                t.irecv(0, tag, buf).wait();
            }
        });
        INFO("NIC capped: " << capped);
        REQUIRE(arrives_at(ms(sent[0].arrival - sent[0].start), 41.0));
        if (capped) {
            // The second message waits for the NIC: it starts when the first has left.
            REQUIRE(arrives_at(ms(sent[1].arrival - sent[0].start), 81.0));
        } else {
            // Its own link is free: it starts at once (the two isends are microseconds apart).
            REQUIRE(arrives_at(ms(sent[1].arrival - sent[1].start), 41.0));
            REQUIRE(ms(sent[1].start - sent[0].start) < 20.0);
        }
    }
}

TEST_CASE("throttled: each direction of a link has its own bandwidth and latency", "[throttled]") {
    auto model = link_model::uniform(2, 1.0, 1.0);
    model.set_link(0, 1, 30.0, 0.1).set_link(1, 0, 2.0, 1.0);
    double forward = 0, backward = 0;
    run_inproc(2, [&](inproc& world) {
        throttled<inproc> t(world.split(0, world.rank()), model);
        std::vector<std::byte> buf(100'000);
        const int peer = 1 - t.rank();
        auto r = t.irecv(peer, {dtfm::channel::user, 3}, buf);
        auto s = t.isend(peer, {dtfm::channel::user, 3}, buf);
        (t.rank() == 0 ? forward : backward) = ms(t.last_arrival() - t.last_schedule().start);
        s.wait();
        r.wait();
    });
    REQUIRE(arrives_at(forward, 30.0 + 8.0));   // 100 kB at 100 Mbit/s: 8 ms
    REQUIRE(arrives_at(backward, 2.0 + 0.8));   // at 1 Gbit/s: 0.8 ms
}

TEST_CASE("throttled: the time scale stretches or shrinks every duration", "[throttled]") {
    auto model = link_model::uniform(2, 20.0, 0.1);
    model.with_time_scale(0.25);
    const auto t = send_and_time(2, model, {1'000'000});
    REQUIRE(arrives_at(t.emulated[0], (20.0 + 80.0) * 0.25));
    CHECK(measured_near(t.measured[0], 25.0));
}

namespace {
// A topology shaped like the scenario files: two regions, fast inside, slow across.
struct two_regions {
    int size() const { return 4; }
    double delay_ms(int a, int b) const { return (a < 2) == (b < 2) ? 1.0 : 11.0; }
    double bandwidth_gbps(int a, int b) const { return (a < 2) == (b < 2) ? 5.0 : 1.12; }
};
}  // namespace

TEST_CASE("throttled: links come from a topology and ranks from a placement", "[throttled]") {
    const auto model = link_model::from_topology(two_regions{});
    REQUIRE(model.delay_seconds(0, 1) == Approx(0.001));
    REQUIRE(model.delay_seconds(0, 3) == Approx(0.011));
    REQUIRE(model.bytes_per_second(2, 1) == Approx(1.12e9 / 8));
    // Rank 0 on device 0, rank 1 on device 3: the cross-region link.
    const auto t = send_and_time(2, model, {1'120'000}, 1, {0, 3});
    REQUIRE(arrives_at(t.emulated[0], 11.0 + 8.0));
    // Same region: devices 0 and 1.
    const auto near = send_and_time(2, model, {1'120'000}, 1, {0, 1});
    REQUIRE(arrives_at(near.emulated[0], 1.0 + 1.792));
}

TEST_CASE("throttled: a sub-group keeps each rank's device", "[throttled]") {
    const auto model = link_model::from_topology(two_regions{});
    std::vector<int> seen(4, -1);
    run_inproc(4, [&](inproc& world) {
        // Rank r runs on device 3 - r; split into the pairs {0, 2} and {1, 3} by parity.
        throttled<inproc> t(world.split(0, world.rank()), model, {3, 2, 1, 0});
        auto pair = t.split(t.rank() % 2, t.rank());
        DTFM_RANK_REQUIRE(pair.size() == 2);
        DTFM_RANK_REQUIRE(pair.device() == 3 - world.rank());
        const int other_world_rank = world.rank() % 2 + 2 * (1 - pair.rank());
        DTFM_RANK_REQUIRE(pair.device_of(1 - pair.rank()) == 3 - other_world_rank);
        seen[static_cast<std::size_t>(world.rank())] = pair.device();
    });
    REQUIRE(seen == std::vector<int>{3, 2, 1, 0});
}

TEST_CASE("throttled: bad models and placements are config_errors", "[throttled]") {
    REQUIRE_THROWS_AS(link_model::uniform(0, 1.0, 1.0), dtfm::config_error);
    REQUIRE_THROWS_AS(link_model::uniform(2, -1.0, 1.0), dtfm::config_error);
    REQUIRE_THROWS_AS(link_model::uniform(2, 1.0, 0.0), dtfm::config_error);
    REQUIRE_THROWS_AS(link_model::uniform(2, 1.0, std::numeric_limits<double>::infinity()), dtfm::config_error);
    REQUIRE_THROWS_AS(link_model::uniform(2, 1.0, 1.0).with_time_scale(0), dtfm::config_error);
    REQUIRE_THROWS_AS(link_model::uniform(2, 1.0, 1.0).with_nic_cap(-3), dtfm::config_error);
    REQUIRE_THROWS_AS(link_model::uniform(2, 1.0, 1.0).set_link(0, 2, 1.0, 1.0), dtfm::config_error);
    REQUIRE_THROWS_AS(run_inproc(2, [](inproc& world) {
                          throttled<inproc> t(world.split(0, world.rank()), link_model::uniform(2, 1, 1), {0, 5});
                      }),
                      dtfm::config_error);
    REQUIRE_THROWS_AS(run_inproc(2, [](inproc& world) {
                          throttled<inproc> t(world.split(0, world.rank()), link_model::uniform(2, 1, 1), {0});
                      }),
                      dtfm::config_error);
}
