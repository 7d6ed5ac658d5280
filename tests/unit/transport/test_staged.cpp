// staged<T, Copier> on inproc ranks, with copiers whose copies happen only when their fence is
// polled or waited for (as a GPU copy on its own stream lands later): sends arrive in order with the
// bytes they were given; isend returns before its copy is done and the block leaves only once it
// is; a blocking wait sends what is queued first, so two ranks may send and then wait for each
// other; a dropped send still goes out; receives land in the destination only once complete, and
// only the message's bytes; staging blocks are reused.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <numeric>
#include <vector>

#include "dtfm/transport/inproc.hpp"
#include "dtfm/transport/staged.hpp"
#include "../../support/staging_copiers.hpp"

using namespace dtfm;

namespace {

using test::deferred_copier;
using test::gated_copier;
using test::test_device_space;
using staged_inproc = transport::staged<transport::inproc, deferred_copier>;
using gated_inproc = transport::staged<transport::inproc, gated_copier>;
static_assert(concepts::transport<staged_inproc>);
static_assert(std::same_as<staged_inproc::memory_space, test_device_space>);

std::vector<std::byte> pattern(std::size_t n, int seed) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 7 + static_cast<std::size_t>(seed)) & 0xFF);
    return v;
}

}  // namespace

TEST_CASE("staged: sends carry the bytes at isend, in order; receives land complete", "[transport][staged]") {
    const std::size_t sizes[] = {0, 10, 100000, 3000};
    transport::run_inproc(2, [&](transport::inproc& world) {
        staged_inproc t(world);
        const message_tag tag{channel::user, 5};
        if (t.rank() == 0) {
            std::vector<std::vector<std::byte>> messages;
            std::vector<staged_inproc::request_type> sends;
            for (int m = 0; m < 4; ++m) messages.push_back(pattern(sizes[m], m));
            for (int m = 0; m < 4; ++m) sends.push_back(t.isend(1, tag, messages[static_cast<std::size_t>(m)]));
            for (auto& s : sends) s.wait();
        } else {
            for (int m = 0; m < 4; ++m) {
                std::vector<std::byte> in(sizes[m] + 16, std::byte{0x11});
                auto r = t.irecv(0, tag, in);
                std::size_t polls = 0;
                while (!r.test()) ++polls;
                REQUIRE(r.wait() == sizes[m]);
                const auto expected = pattern(sizes[m], m);
                REQUIRE(std::equal(expected.begin(), expected.end(), in.begin()));
                for (std::size_t i = sizes[m]; i < in.size(); ++i) REQUIRE(in[i] == std::byte{0x11});
                if (sizes[m] > 0) REQUIRE(polls >= 1);  // the copy out was seen in flight once
            }
        }
    });
}

TEST_CASE("staged: blocks are reused, wait_for and split work through the stage", "[transport][staged]") {
    transport::run_inproc(2, [&](transport::inproc& world) {
        deferred_copier copier;
        auto allocations = copier.allocations;
        staged_inproc t(world, copier);
        const message_tag tag{channel::data_parallel, 1};
        for (int round = 0; round < 20; ++round) {
            auto bytes = pattern(4096, round);
            if (t.rank() == 0) {
                t.isend(1, tag, bytes).wait();
            } else {
                std::vector<std::byte> in(4096);
                auto r = t.irecv(0, tag, in);
                while (!r.wait_for(std::chrono::milliseconds(1))) {
                }
                REQUIRE(in == bytes);
            }
        }
        REQUIRE(*allocations <= 2);
        REQUIRE(t.staging_blocks() <= 2);

        auto sub = t.split(0, -t.rank());  // one group, ranks reversed
        REQUIRE(sub.size() == 2);
        auto bytes = pattern(777, 9);
        if (sub.rank() == 0) {
            sub.isend(1, tag, bytes).wait();
        } else {
            std::vector<std::byte> in(777);
            REQUIRE(sub.irecv(0, tag, in).wait() == 777);
            REQUIRE(in == bytes);
        }
    });
}

TEST_CASE("staged: isend returns before its copy is done, and the block leaves only once it is, in order",
          "[transport][staged]") {
    const std::size_t sizes[] = {3000, 0, 200000};  // the empty send waits behind the first
    const message_tag tag{channel::pipeline, 2}, signal{channel::control, 1};
    transport::run_inproc(2, [&](transport::inproc& world) {
        gated_copier copier;
        gated_inproc t(world, copier);
        std::byte none{};
        if (t.rank() == 0) {
            std::vector<std::vector<std::byte>> messages;
            for (int m = 0; m < 3; ++m) messages.push_back(pattern(sizes[m], m));
            std::vector<gated_inproc::request_type> sends;
            for (int m = 0; m < 3; ++m) sends.push_back(t.isend(1, tag, messages[static_cast<std::size_t>(m)]));
            for (auto& s : sends) REQUIRE_FALSE(s.test());  // nothing posted while the copies run
            world.isend(1, signal, std::span(&none, 1)).wait();
            world.irecv(1, signal, std::span(&none, 1)).wait();  // rank 1 has looked
            copier.open->store(true);
            for (auto& s : sends) {
                while (!s.test()) {
                }
            }
            REQUIRE(sends[2].wait() == sizes[2]);
        } else {
            std::vector<std::byte> first(sizes[0]);
            auto r = t.irecv(0, tag, first);
            world.irecv(0, signal, std::span(&none, 1)).wait();  // rank 0 has queued its sends
            REQUIRE_FALSE(r.test());
            world.isend(0, signal, std::span(&none, 1)).wait();
            REQUIRE(r.wait() == sizes[0]);
            REQUIRE(first == pattern(sizes[0], 0));
            std::vector<std::byte> empty(8), last(sizes[2]);
            REQUIRE(t.irecv(0, tag, empty).wait() == 0);
            REQUIRE(t.irecv(0, tag, last).wait() == sizes[2]);
            REQUIRE(last == pattern(sizes[2], 2));
        }
    });
}

TEST_CASE("staged: a blocking wait sends what is queued first; a dropped send still goes out", "[transport][staged]") {
    transport::run_inproc(2, [&](transport::inproc& world) {
        gated_inproc t(world);  // the gate stays shut: only blocking waits finish copies
        const message_tag tag{channel::data_parallel, 4};
        const int peer = 1 - t.rank();
        // Both ranks send, then wait for the other's message: each wait must post its own send.
        auto mine = pattern(100000, t.rank());
        auto send = t.isend(peer, tag, mine);
        std::vector<std::byte> theirs(100000);
        auto r = t.irecv(peer, tag, theirs);
        REQUIRE(r.wait_for(std::chrono::seconds(10)));
        REQUIRE(theirs == pattern(100000, peer));
        REQUIRE(send.wait() == 100000);

        auto small = pattern(100, 7 + t.rank());
        { auto dropped = t.isend(peer, tag, small); }  // goes out as it is dropped
        std::vector<std::byte> in(100);
        REQUIRE(t.irecv(peer, tag, in).wait() == 100);
        REQUIRE(in == pattern(100, 7 + peer));

        REQUIRE_THROWS_AS(t.isend(2, tag, small), transport_error);
        REQUIRE_THROWS_AS(t.isend(peer, message_tag{channel::user, message_tag::max_id + 1}, small), transport_error);
    });
}
