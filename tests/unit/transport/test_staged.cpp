// staged<T, Copier> on inproc ranks, with a copier whose copies happen only when their fence is
// polled or waited for (as a GPU copy on its own stream lands later): sends carry the bytes of the
// moment isend returned, in order; receives land in the destination only once complete, and only the
// message's bytes; staging blocks are reused.
#include <catch2/catch.hpp>

#include <cstring>
#include <numeric>
#include <vector>

#include "dtfm/transport/inproc.hpp"
#include "dtfm/transport/staged.hpp"

using namespace dtfm;

namespace {

struct test_device_space {
    using memory_space_concept = memory_space_tag;
    static constexpr const char* name() noexcept { return "test device"; }
};

struct deferred_copier {
    using memory_space = test_device_space;

    class fence {
    public:
        fence(std::byte* to, const std::byte* from, std::size_t n) : to_(to), from_(from), n_(n) {}
        // Not ready the first time it is asked: the copy is "in flight".
        bool ready() {
            if (!asked_) {
                asked_ = true;
                return false;
            }
            wait();
            return true;
        }
        void wait() {
            if (!done_) std::memcpy(to_, from_, n_);
            done_ = true;
        }

    private:
        std::byte* to_;
        const std::byte* from_;
        std::size_t n_;
        bool asked_ = false;
        bool done_ = false;
    };

    std::shared_ptr<int> allocations = std::make_shared<int>(0);

    std::byte* allocate(std::size_t n) {
        ++*allocations;
        return new std::byte[n];
    }
    void deallocate(std::byte* p, std::size_t) { delete[] p; }
    fence to_host(std::byte* host, const std::byte* from, std::size_t n) { return {host, from, n}; }
    fence to_space(std::byte* to, const std::byte* host, std::size_t n) { return {to, host, n}; }
};

using staged_inproc = transport::staged<transport::inproc, deferred_copier>;
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
            std::vector<staged_inproc::request_type> sends;
            for (int m = 0; m < 4; ++m) {
                auto bytes = pattern(sizes[m], m);
                sends.push_back(t.isend(1, tag, bytes));
                std::fill(bytes.begin(), bytes.end(), std::byte{0xEE});  // reused at once: already staged
            }
            for (auto& s : sends) s.wait();
        } else {
            for (int m = 0; m < 4; ++m) {
                std::vector<std::byte> in(sizes[m] + 16, std::byte{0x11});
                auto r = t.irecv(0, tag, in);
                std::size_t polls = 0;
                while (!r.test()) ++polls;
                REQUIRE(r.wait() == sizes[m]);
                const auto expected = pattern(sizes[m], m);
                REQUIRE(std::memcmp(in.data(), expected.data(), sizes[m]) == 0);
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
