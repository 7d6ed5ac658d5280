// staged<T, Copier> on inproc ranks, with copiers whose copies land late (as a GPU copy on its own
// stream does): sends arrive in order with the bytes they were given; isend returns before its copy
// is done and the block leaves only once it is, whatever the rank blocks on meanwhile (another
// group, a split); a refused send fails the later ones; a dropped send not yet posted is cancelled;
// wait_for keeps its time; receives land in the destination only once complete, and only the
// message's bytes; staging blocks are reused.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <numeric>
#include <thread>
#include <vector>

#include "dtfm/transport/inproc.hpp"
#include "dtfm/transport/throttled.hpp"
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
            copier.open->store(true);  // this rank's copies out land at once
            std::vector<std::byte> first(sizes[0]);
            auto r = t.irecv(0, tag, first);
            world.irecv(0, signal, std::span(&none, 1)).wait();  // rank 0 has queued its sends
            REQUIRE_FALSE(r.test());  // not sent
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

namespace {

// The device "finishes" the work queued before the sends a little later, on its own.
std::jthread open_later(const gated_copier& copier) {
    copier.open->store(false);
    return std::jthread([open = copier.open] {
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        open->store(true);
    });
}

}  // namespace

TEST_CASE("staged: a send goes out while its rank blocks on another group, and before a split", "[transport][staged]") {
    const message_tag x{channel::data_parallel, 1}, y{channel::pipeline, 1}, z{channel::user, 1};
    transport::run_inproc(2, [&](transport::inproc& world) {
        gated_copier copier;
        copier.open->store(true);
        gated_inproc parent(world, copier);
        auto other = parent.split(0, parent.rank());  // another group: its own host transport
        const auto mx = pattern(100000, 1), my = pattern(100000, 2), mz = pattern(5000, 3);
        std::vector<std::byte> in(100000);
        {
            auto opener = open_later(copier);
            if (parent.rank() == 0) {  // sends on one group, then waits on the other
                auto s = parent.isend(1, x, mx);
                REQUIRE(other.irecv(1, y, in).wait() == in.size());
                REQUIRE(in == my);
                s.wait();
            } else {
                REQUIRE(parent.irecv(0, x, in).wait() == in.size());
                REQUIRE(in == mx);
                other.isend(0, y, my).wait();
            }
        }
        {
            auto opener = open_later(copier);
            if (parent.rank() == 0) {  // sends, then splits; rank 1 splits once the message is in
                auto s = parent.isend(1, z, mz);
                auto g = parent.split(0, 0);
                REQUIRE(g.size() == 2);
                s.wait();
            } else {
                std::vector<std::byte> got(5000);
                REQUIRE(parent.irecv(0, z, got).wait() == got.size());
                REQUIRE(got == mz);
                auto g = parent.split(0, 0);
                REQUIRE(g.size() == 2);
            }
        }
    });
}

namespace {

// inproc that refuses 13-byte sends, as a host transport refuses what it cannot carry.
struct refusing {
    using transport_concept = transport_tag;
    using memory_space = host_space;
    using request_type = transport::inproc_request;

    transport::inproc inner;

    int rank() const { return inner.rank(); }
    int size() const { return inner.size(); }
    request_type isend(int peer, message_tag tag, std::span<const std::byte> bytes) {
        if (bytes.size() == 13) throw transport_error("refusing: 13 bytes");
        return inner.isend(peer, tag, bytes);
    }
    request_type irecv(int peer, message_tag tag, std::span<std::byte> buffer) { return inner.irecv(peer, tag, buffer); }
    refusing split(int color, int key) { return {inner.split(color, key)}; }
};
static_assert(concepts::transport<refusing>);

}  // namespace

TEST_CASE("staged: a refused send fails, and so does every later send of the group", "[transport][staged]") {
    const message_tag tag{channel::user, 3}, signal{channel::control, 2};
    transport::run_inproc(2, [&](transport::inproc& world) {
        gated_copier copier;
        copier.open->store(true);
        transport::staged<refusing, gated_copier> t(refusing{world}, copier);
        std::byte none{};
        if (t.rank() == 0) {
            const auto bad = pattern(13, 1), good = pattern(5, 2);
            auto refused = t.isend(1, tag, bad);
            auto next = t.isend(1, tag, good);  // must not take the refused one's place
            REQUIRE_THROWS_AS(refused.wait(), transport_error);
            REQUIRE_THROWS_AS(next.wait(), transport_error);
            REQUIRE_THROWS_AS(t.isend(1, tag, good), transport_error);
            world.isend(1, signal, std::span(&none, 1)).wait();
        } else {
            std::vector<std::byte> in(16);
            auto r = t.irecv(0, tag, in);
            world.irecv(0, signal, std::span(&none, 1)).wait();
            REQUIRE_FALSE(r.test());
        }
    });
}

TEST_CASE("staged: a dropped send not yet posted is cancelled; a completed one leaves its block free",
          "[transport][staged]") {
    const message_tag tag{channel::user, 4}, signal{channel::control, 3};
    transport::run_inproc(2, [&](transport::inproc& world) {
        {
            gated_copier copier;
            gated_inproc t(world, copier);
            if (t.rank() == 0) {
                const auto first = pattern(100, 1);
                { auto dropped = t.isend(1, tag, first); }  // its copy has not landed
                copier.open->store(true);
                t.isend(1, tag, pattern(100, 2)).wait();
            } else {
                copier.open->store(true);
                std::vector<std::byte> in(100);
                REQUIRE(t.irecv(0, tag, in).wait() == 100);
                REQUIRE(in == pattern(100, 2));
            }
        }
        deferred_copier copier;
        auto allocations = copier.allocations;
        staged_inproc t(world, copier);
        std::byte none{};
        for (int round = 0; round < 20; ++round) {
            if (t.rank() == 0) {
                const auto bytes = pattern(100, round);
                auto s = t.isend(1, tag, bytes);
                world.irecv(1, signal, std::span(&none, 1)).wait();  // received, never waited for here
            } else {
                std::vector<std::byte> in(100);
                REQUIRE(t.irecv(0, tag, in).wait() == 100);
                REQUIRE(in == pattern(100, round));
                world.isend(0, signal, std::span(&none, 1)).wait();
            }
        }
        REQUIRE(*allocations <= 2);
        REQUIRE(t.staging_blocks() <= 2);
    });
}

TEST_CASE("staged: wait_for on a send whose copy has not landed returns false in time", "[transport][staged]") {
    const message_tag tag{channel::user, 6};
    transport::run_inproc(2, [&](transport::inproc& world) {
        gated_copier copier;
        gated_inproc t(world, copier);
        if (t.rank() == 0) {
            const auto bytes = pattern(1000, 4);
            auto s = t.isend(1, tag, bytes);
            const auto start = std::chrono::steady_clock::now();
            REQUIRE_FALSE(s.wait_for(std::chrono::milliseconds(20)));
            REQUIRE(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
            copier.open->store(true);
            REQUIRE(s.wait_for(std::chrono::seconds(10)));
        } else {
            copier.open->store(true);
            std::vector<std::byte> in(1000);
            REQUIRE(t.irecv(0, tag, in).wait() == 1000);
            REQUIRE(in == pattern(1000, 4));
        }
    });
}

TEST_CASE("staged: receives dropped after a timeout give their block back (host requests cancelled on drop)",
          "[transport][staged]") {
    static_assert(concepts::drop_releases_buffer<transport::inproc>);
    static_assert(!concepts::drop_releases_buffer<transport::throttled<transport::inproc>>);
    const message_tag silent{channel::user, 9}, go{channel::control, 9};
    transport::run_inproc(2, [&](transport::inproc& world) {
        deferred_copier copier;
        staged_inproc t(world, copier);
        if (t.rank() == 1) {
            for (int round = 0; round < 20; ++round) {
                std::vector<std::byte> in(256);
                auto r = t.irecv(0, silent, in);
                REQUIRE_FALSE(r.wait_for(std::chrono::microseconds(200)));
            }  // each dropped unanswered: inproc cancels it, so its block is free again
            REQUIRE(t.staging_blocks() == 1);
            std::byte token{};
            world.isend(0, go, std::span(&token, 1)).wait();
            std::vector<std::byte> in(256);
            REQUIRE(t.irecv(0, silent, in).wait() == 256);
            REQUIRE(in == pattern(256, 7));
            REQUIRE(t.staging_blocks() == 1);
        } else {
            std::byte token{};
            world.irecv(1, go, std::span(&token, 1)).wait();
            t.isend(1, silent, pattern(256, 7)).wait();
        }
    });
}

TEST_CASE("staged: the poster thread binds itself through the copier before it waits on a copy",
          "[transport][staged]") {
    const message_tag tag{channel::user, 10};
    transport::run_inproc(2, [&](transport::inproc& world) {
        deferred_copier copier;
        auto bound = copier.bound;
        auto bound_mutex = copier.bound_mutex;
        staged_inproc t(world, copier);
        if (t.rank() == 0) {
            for (int m = 0; m < 3; ++m) t.isend(1, tag, pattern(64, m)).wait();
            std::lock_guard lock(*bound_mutex);
            REQUIRE(bound->size() == 3);  // once per send, on the poster
            for (const auto id : *bound) REQUIRE(id != std::this_thread::get_id());
        } else {
            for (int m = 0; m < 3; ++m) {
                std::vector<std::byte> in(64);
                REQUIRE(t.irecv(0, tag, in).wait() == 64);
                REQUIRE(in == pattern(64, m));
            }
            std::lock_guard lock(*bound_mutex);
            REQUIRE(bound->empty());  // receives do not use the poster
        }
    });
}
