// transport::inproc: point-to-point matching and ordering, eager and rendezvous sizes, timeouts
// and cancellation, split into a stages × replicas mesh, and failure propagation from any rank.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <stdexcept>
#include <vector>

#include "dtfm/transport/inproc.hpp"
#include "../../support/transport_suite.hpp"

using dtfm::channel;
using dtfm::message_tag;
using dtfm::transport::inproc;
using dtfm::transport::run_inproc;
using namespace std::chrono_literals;

using dtfm::test::bytes_of;

TEST_CASE("inproc satisfies the transport concept", "[inproc]") {
    STATIC_REQUIRE(dtfm::concepts::transport<inproc>);
}

TEST_CASE("inproc: every rank runs once with its own rank", "[inproc]") {
    for (int n : {1, 2, 3, 8}) {
        std::vector<std::atomic<int>> seen(static_cast<std::size_t>(n));
        run_inproc(n, [&](inproc& t) {
            DTFM_RANK_REQUIRE(t.size() == n);
            seen[static_cast<std::size_t>(t.rank())]++;
        });
        for (auto& s : seen) REQUIRE(s.load() == 1);
    }
    REQUIRE_THROWS_AS(run_inproc(0, [](inproc&) {}), dtfm::transport_error);
}

TEST_CASE("inproc: messages of every size arrive intact, whichever side comes first", "[inproc]") {
    // Sizes straddle the eager limit (copied at once) and the rendezvous path (borrowed).
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{1000}, inproc::eager_limit / 4,
                          inproc::eager_limit / 4 + 1, std::size_t{1} << 20}) {
        for (bool receiver_first : {true, false}) {
            run_inproc(2, [&](inproc& t) {
                const message_tag tag{channel::user, 9};
                if (t.rank() == 0) {
                    std::vector<float> out(n);
                    std::iota(out.begin(), out.end(), 1.0f);
                    if (receiver_first) std::this_thread::sleep_for(5ms);
                    auto r = t.isend(1, tag, bytes_of(out));
                    DTFM_RANK_REQUIRE(r.wait() == n * sizeof(float));
                } else {
                    std::vector<float> in(n + 3, -1.0f);
                    if (!receiver_first) std::this_thread::sleep_for(5ms);
                    auto r = t.irecv(0, tag, bytes_of(in));
                    DTFM_RANK_REQUIRE(r.wait() == n * sizeof(float));
                    for (std::size_t i = 0; i < n; ++i) DTFM_RANK_REQUIRE(in[i] == static_cast<float>(i + 1));
                    DTFM_RANK_REQUIRE(in[n] == -1.0f);  // nothing written past the message
                }
            });
        }
    }
}

TEST_CASE("inproc: same key arrives in send order, channels and ids never mix", "[inproc]") {
    run_inproc(2, [](inproc& t) {
        const message_tag dp{channel::data_parallel, 1};
        const message_tag pp{channel::pipeline, 1};
        const message_tag dp2{channel::data_parallel, 2};
        if (t.rank() == 0) {
            for (int i = 0; i < 50; ++i) {
                std::vector<int> v{i};
                t.isend(1, dp, bytes_of(v)).wait();
                std::vector<int> w{1000 + i};
                t.isend(1, pp, bytes_of(w)).wait();
            }
            std::vector<int> last{-7};
            t.isend(1, dp2, bytes_of(last)).wait();
        } else {
            // Receive the later key first: it must not take an earlier message of another key.
            std::vector<int> last{0};
            DTFM_RANK_REQUIRE(t.irecv(0, dp2, bytes_of(last)).wait() == sizeof(int));
            DTFM_RANK_REQUIRE(last[0] == -7);
            for (int i = 0; i < 50; ++i) {
                std::vector<int> w{0};
                t.irecv(0, pp, bytes_of(w)).wait();
                DTFM_RANK_REQUIRE(w[0] == 1000 + i);
            }
            for (int i = 0; i < 50; ++i) {
                std::vector<int> v{0};
                t.irecv(0, dp, bytes_of(v)).wait();
                DTFM_RANK_REQUIRE(v[0] == i);
            }
        }
    });
}

TEST_CASE("inproc: receives posted in advance match in posting order", "[inproc]") {
    run_inproc(3, [](inproc& t) {
        const message_tag tag{channel::control, 4};
        if (t.rank() == 0) {
            std::vector<std::vector<int>> in(6, std::vector<int>(1, -1));
            std::vector<dtfm::transport::inproc_request> reqs;
            for (int i = 0; i < 3; ++i) reqs.push_back(t.irecv(1, tag, bytes_of(in[static_cast<std::size_t>(i)])));
            for (int i = 3; i < 6; ++i) reqs.push_back(t.irecv(2, tag, bytes_of(in[static_cast<std::size_t>(i)])));
            for (auto& r : reqs) r.wait();
            for (int i = 0; i < 3; ++i) {
                DTFM_RANK_REQUIRE(in[static_cast<std::size_t>(i)][0] == 10 + i);
                DTFM_RANK_REQUIRE(in[static_cast<std::size_t>(i + 3)][0] == 20 + i);
            }
        } else {
            for (int i = 0; i < 3; ++i) {
                std::vector<int> v{t.rank() * 10 + i};
                t.isend(0, tag, bytes_of(v)).wait();
            }
        }
    });
}

TEST_CASE("inproc: a message larger than the receive buffer fails the receive", "[inproc]") {
    for (std::size_t n : {std::size_t{16}, std::size_t{1} << 18}) {
        run_inproc(2, [&](inproc& t) {
            const message_tag tag{channel::user, 1};
            if (t.rank() == 0) {
                std::vector<std::byte> out(n);
                t.isend(1, tag, out).wait();  // completes: the receiver took (and refused) it
            } else {
                std::vector<std::byte> in(n - 1);
                auto r = t.irecv(0, tag, in);
                DTFM_RANK_REQUIRE_THROWS_AS(r.wait(), dtfm::transport_error);
            }
        });
    }
}

TEST_CASE("inproc: wait_for times out, test does not block, and a dropped receive is cancelled",
          "[inproc]") {
    run_inproc(2, [](inproc& t) {
        const message_tag tag{channel::user, 2};
        const message_tag go{channel::control, 0};
        if (t.rank() == 1) {
            std::vector<int> in{-1};
            {
                auto r = t.irecv(0, tag, bytes_of(in));
                DTFM_RANK_REQUIRE(!r.test());
                const auto start = std::chrono::steady_clock::now();
                DTFM_RANK_REQUIRE(!r.wait_for(20ms));
                DTFM_RANK_REQUIRE(std::chrono::steady_clock::now() - start >= 20ms);
            }  // destroyed unfinished: the buffer must never be written
            std::vector<int> dummy{0};
            t.isend(0, go, bytes_of(dummy)).wait();
            std::vector<int> second{-1};
            DTFM_RANK_REQUIRE(t.irecv(0, tag, bytes_of(second)).wait() == sizeof(int));
            DTFM_RANK_REQUIRE(second[0] == 42);
            DTFM_RANK_REQUIRE(in[0] == -1);
        } else {
            std::vector<int> dummy{0};
            t.irecv(1, go, bytes_of(dummy)).wait();
            std::vector<int> v{42};
            auto s = t.isend(1, tag, bytes_of(v));
            DTFM_RANK_REQUIRE(s.wait_for(10s));
            DTFM_RANK_REQUIRE(s.test());
        }
    });
}

TEST_CASE("inproc: split orders ranks by key, and sub-groups split again", "[inproc]") {
    // The stages × replicas mesh itself is in the transport suite (test_transports.cpp).
    run_inproc(6, [](inproc& world) {
        auto reversed = world.split(0, -world.rank());
        DTFM_RANK_REQUIRE(reversed.rank() == world.size() - 1 - world.rank());
        auto halves = reversed.split(reversed.rank() % 2, 0);
        DTFM_RANK_REQUIRE(halves.size() == world.size() / 2);
        DTFM_RANK_REQUIRE(halves.rank() == reversed.rank() / 2);
    });
}

TEST_CASE("inproc: bad arguments are transport_errors", "[inproc]") {
    run_inproc(2, [](inproc& t) {
        // Bad peers are in the transport suite; these are inproc's own limits.
        std::vector<std::byte> b(4);
        DTFM_RANK_REQUIRE_THROWS_AS(t.isend(0, {channel::user, message_tag::max_id + 1}, b), dtfm::transport_error);
        DTFM_RANK_REQUIRE_THROWS_AS(t.split(-1, 0), dtfm::transport_error);
    });
}

TEST_CASE("inproc: the first failure is rethrown and no other rank hangs", "[inproc]") {
    // Rank 2 fails; the others are blocked in a receive from it, in a rendezvous send to it, and
    // in a split it never joins. All must return, and run_inproc rethrows rank 2's exception.
    std::atomic<int> released{0};
    const auto start = std::chrono::steady_clock::now();
    try {
        run_inproc(4, [&](inproc& t) {
            if (t.rank() == 2) {
                std::this_thread::sleep_for(20ms);
                throw std::runtime_error("rank 2 lost its GPU");
            }
            try {
                if (t.rank() == 0) {
                    std::vector<std::byte> in(8);
                    t.irecv(2, {channel::user, 0}, in).wait();
                } else if (t.rank() == 1) {
                    std::vector<std::byte> big(1 << 20);
                    t.isend(2, {channel::user, 0}, big).wait();
                } else {
                    (void)t.split(0, 0);
                }
            } catch (const dtfm::transport_error& e) {
                released++;
                DTFM_RANK_REQUIRE(std::string(e.what()).find("rank 2 lost its GPU") != std::string::npos);
                throw;
            }
        });
        FAIL("run_inproc did not rethrow");
    } catch (const std::runtime_error& e) {
        REQUIRE(std::string(e.what()) == "rank 2 lost its GPU");
    }
    REQUIRE(released.load() == 3);
    REQUIRE(std::chrono::steady_clock::now() - start < 5s);
}
