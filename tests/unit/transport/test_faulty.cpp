// faulty<T>: drops, delays, corruption and a dead rank, reproducible from a seed; receives with a
// timeout never hang, and checked<> above it turns corruption into dtfm::wire_error.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "dtfm/transport/checked.hpp"
#include "dtfm/transport/faulty.hpp"
#include "dtfm/transport/inproc.hpp"
#include "dtfm/transport/wait.hpp"
#include "../../support/transport_suite.hpp"

using namespace dtfm::transport;
using namespace std::chrono_literals;
using dtfm::message_tag;
using dtfm::test::bytes_of;
using clock_type = std::chrono::steady_clock;

TEST_CASE("faulty: a dropped message makes a receive with a timeout raise timeout_error", "[faulty]") {
    fault_plan plan;
    plan.drop_rate = 1.0;
    run_inproc(2, [&](inproc& world) {
        faulty<inproc> t(world.split(0, world.rank()), plan);
        std::vector<int> v{7};
        if (t.rank() == 0) {
            DTFM_RANK_REQUIRE(t.isend(1, {dtfm::channel::user, 1}, bytes_of(v)).wait() == sizeof(int));
            DTFM_RANK_REQUIRE(t.counts().dropped == 1);
        } else {
            auto r = t.irecv(0, {dtfm::channel::user, 1}, bytes_of(v));
            const auto start = clock_type::now();
            DTFM_RANK_REQUIRE_THROWS_AS(wait_within(r, 50ms, "receive"), dtfm::timeout_error);
            const auto waited = clock_type::now() - start;
            DTFM_RANK_REQUIRE(waited >= 50ms);
            DTFM_RANK_REQUIRE(waited < 1s);
            DTFM_RANK_REQUIRE(v[0] == 7);
        }
    });
}

TEST_CASE("faulty: a corrupted message is caught by checked<> as a wire_error", "[faulty][checked]") {
    fault_plan plan;
    plan.corrupt_rate = 1.0;
    plan.seed = 42;
    for (std::size_t n : {std::size_t{1}, std::size_t{1000}, std::size_t{200'000}}) {
        run_inproc(2, [&](inproc& world) {
            checked<faulty<inproc>> t(faulty<inproc>(world.split(0, world.rank()), plan));
            std::vector<std::byte> buf(n, std::byte{0x5A});
            if (t.rank() == 0) {
                t.isend(1, {dtfm::channel::user, 2}, buf).wait();
            } else {
                auto r = t.irecv(0, {dtfm::channel::user, 2}, buf);
                DTFM_RANK_REQUIRE_THROWS_AS(r.wait(), dtfm::wire_error);
            }
        });
    }
}

TEST_CASE("faulty: without checked<>, corruption goes unnoticed (why integrity checking exists)", "[faulty]") {
    fault_plan plan;
    plan.corrupt_rate = 1.0;
    run_inproc(2, [&](inproc& world) {
        faulty<inproc> t(world.split(0, world.rank()), plan);
        std::vector<std::uint8_t> buf(64, 0);
        if (t.rank() == 0) {
            t.isend(1, {dtfm::channel::user, 3}, bytes_of(buf)).wait();
            DTFM_RANK_REQUIRE(t.counts().corrupted == 1);
            for (auto b : buf) DTFM_RANK_REQUIRE(b == 0);  // the sender's buffer is untouched
        } else {
            DTFM_RANK_REQUIRE(t.irecv(0, {dtfm::channel::user, 3}, bytes_of(buf)).wait() == 64);
            int flipped_bits = 0;
            for (auto b : buf) flipped_bits += __builtin_popcount(b);
            DTFM_RANK_REQUIRE(flipped_bits == 1);
        }
    });
}

TEST_CASE("faulty: delayed messages arrive late, the others on time", "[faulty]") {
    fault_plan plan;
    plan.delay_rate = 1.0;
    plan.delay = 40ms;
    run_inproc(2, [&](inproc& world) {
        faulty<inproc> t(world.split(0, world.rank()), plan);
        std::vector<int> v{1};
        if (t.rank() == 0) {
            t.isend(1, {dtfm::channel::user, 4}, bytes_of(v)).wait();
        } else {
            const auto start = clock_type::now();
            t.irecv(0, {dtfm::channel::user, 4}, bytes_of(v)).wait();
            DTFM_RANK_REQUIRE(clock_type::now() - start >= 35ms);
        }
    });
}

TEST_CASE("faulty: a dead rank's messages stop, and its peers time out instead of hanging", "[faulty]") {
    fault_plan plan;
    plan.dead_rank = 1;
    plan.dead_after_sends = 3;
    run_inproc(3, [&](inproc& world) {
        faulty<inproc> t(world.split(0, world.rank()), plan);
        if (t.rank() == 1) {
            for (int i = 0; i < 6; ++i) {
                std::vector<int> v{i};
                t.isend(0, {dtfm::channel::user, 5}, bytes_of(v)).wait();
            }
            DTFM_RANK_REQUIRE(t.dead());
            DTFM_RANK_REQUIRE(t.counts().dropped == 3);
        } else if (t.rank() == 0) {
            for (int i = 0; i < 3; ++i) {
                std::vector<int> v{-1};
                auto r = t.irecv(1, {dtfm::channel::user, 5}, bytes_of(v));
                wait_within(r, 5s, "receive from rank 1");
                DTFM_RANK_REQUIRE(v[0] == i);
            }
            std::vector<int> v{-1};
            auto r = t.irecv(1, {dtfm::channel::user, 5}, bytes_of(v));
            DTFM_RANK_REQUIRE_THROWS_AS(wait_within(r, 50ms, "receive from rank 1"), dtfm::timeout_error);
        }
        DTFM_RANK_REQUIRE(!(t.rank() != 1 && t.dead()));
    });
}

TEST_CASE("faulty: the same seed injects the same faults", "[faulty]") {
    // Which of 200 messages are dropped depends only on the seed (and the sending rank).
    auto dropped_pattern = [](std::uint64_t seed) {
        fault_plan plan;
        plan.seed = seed;
        plan.drop_rate = 0.3;
        std::vector<bool> dropped;
        run_inproc(1, [&](inproc& world) {
            faulty<inproc> t(world.split(0, 0), plan);
            std::vector<int> v{0};
            for (int i = 0; i < 200; ++i) {
                const auto before = t.counts().dropped;
                t.isend(0, {dtfm::channel::user, 6}, bytes_of(v)).wait();
                dropped.push_back(t.counts().dropped != before);
            }
        });
        return dropped;
    };
    const auto a = dropped_pattern(11);
    REQUIRE(a == dropped_pattern(11));
    REQUIRE(a != dropped_pattern(12));
    const auto n = std::count(a.begin(), a.end(), true);
    REQUIRE(n > 30);  // 0.3 of 200 is 60; a binomial this far off is a broken generator
    REQUIRE(n < 90);
}

TEST_CASE("faulty: rates outside [0, 1] are config_errors", "[faulty]") {
    fault_plan bad;
    bad.drop_rate = 1.5;
    REQUIRE_THROWS_AS(run_inproc(1, [&](inproc& world) { faulty<inproc> t(world.split(0, 0), bad); }),
                      dtfm::config_error);
}
