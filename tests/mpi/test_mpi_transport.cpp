// The transport suite under mpirun: transport::mpi and the wrappers over it (throttled, checked,
// faulty, all stacked, staged with copies that land late), plus MPI failures as transport_errors,
// emulated links across processes, and staged sends that wait for their copies.
#include <catch2/catch.hpp>

#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "dtfm/transport/checked.hpp"
#include "dtfm/transport/faulty.hpp"
#include "dtfm/transport/mpi.hpp"
#include "dtfm/transport/staged.hpp"
#include "dtfm/transport/throttled.hpp"
#include "../support/on_every_rank.hpp"
#include "../support/staging_copiers.hpp"
#include "../support/transport_suite.hpp"

using namespace dtfm::transport;
using namespace std::chrono_literals;
using dtfm::message_tag;
using dtfm::test::bytes_of;
using dtfm::test::on_every_rank;

namespace {

// A dropped mpi request is cancelled (receive) or waited for (send): staged frees its block.
static_assert(dtfm::concepts::drop_releases_buffer<mpi>);
static_assert(!dtfm::concepts::drop_releases_buffer<throttled<mpi>>);

struct plain {
    static mpi make() { return mpi(); }
};
struct throttled_fast {
    static throttled<mpi> make() {
        mpi world;
        const int n = world.size();
        return {std::move(world), link_model::uniform(n, 0.2, 10.0)};
    }
};
struct checked_plain {
    static checked<mpi> make() { return checked<mpi>(mpi()); }
};
struct faulty_without_faults {
    static faulty<mpi> make() { return {mpi(), fault_plan{}}; }
};
struct stacked {
    static checked<faulty<throttled<mpi>>> make() {
        mpi world;
        const int n = world.size();
        throttled<mpi> slow(std::move(world), link_model::uniform(n, 0.1, 5.0));
        return checked<faulty<throttled<mpi>>>(faulty<throttled<mpi>>(std::move(slow), fault_plan{}));
    }
};

struct staged_late_copies {
    static staged<throttled<mpi>, dtfm::test::deferred_copier> make() {
        return staged<throttled<mpi>, dtfm::test::deferred_copier>(throttled_fast::make());
    }
};

}  // namespace

TEMPLATE_TEST_CASE("every transport passes the transport suite over MPI", "[mpi][transport]", plain,
                   throttled_fast, checked_plain, faulty_without_faults, stacked, staged_late_copies) {
    on_every_rank([] {
        auto t = TestType::make();
        dtfm::test::check_transport(t);
    });
}

TEST_CASE("mpi: a message larger than the receive buffer is a transport_error with MPI's message",
          "[mpi][transport]") {
    on_every_rank([] {
        mpi t;
        const message_tag tag{dtfm::channel::user, 9};
        if (t.rank() == 0) {
            std::vector<int> out(10, 1);
            t.isend(1, tag, bytes_of(out)).wait();
        } else if (t.rank() == 1) {
            std::vector<int> in(5);
            auto r = t.irecv(0, tag, bytes_of(in));
            try {
                r.wait();
                DTFM_RANK_REQUIRE(!"a truncated receive succeeded");
            } catch (const dtfm::transport_error& e) {
                DTFM_RANK_REQUIRE(std::string(e.what()).find("MPI_Wait(receive) failed: ") == 0);
                DTFM_RANK_REQUIRE(std::string(e.what()).find("TRUNCATE") != std::string::npos);
            }
        }
    });
}

TEST_CASE("mpi: throttled links delay and pace messages between processes", "[mpi][throttled]") {
    on_every_rank([] {
        mpi world;
        const int n = world.size();
        // 1 MB at 400 Mbit/s is 20 ms, plus 10 ms of latency.
        throttled<mpi> t(std::move(world), link_model::uniform(n, 10.0, 0.4));
        const message_tag tag{dtfm::channel::user, 10};
        std::vector<std::byte> buf(1'000'000);
        std::vector<int> ready{0};
        if (t.rank() == 0) {
            t.inner().irecv(1, {dtfm::channel::control, 1}, bytes_of(ready)).wait();
            const auto start = std::chrono::steady_clock::now();
            auto s = t.isend(1, tag, buf);
            const auto emulated = t.last_arrival() - t.last_schedule().start;
            DTFM_RANK_REQUIRE(emulated >= 29'990us);
            DTFM_RANK_REQUIRE(emulated <= 30'010us);
            s.wait();  // a send completes when its last byte has left: after 20 ms
            DTFM_RANK_REQUIRE(std::chrono::steady_clock::now() - start >= 20ms);
        } else if (t.rank() == 1) {
            auto r = t.irecv(0, tag, buf);
            const auto start = std::chrono::steady_clock::now();
            t.inner().isend(0, {dtfm::channel::control, 1}, bytes_of(ready)).wait();
            r.wait();
            const auto took = std::chrono::steady_clock::now() - start;
            DTFM_RANK_REQUIRE(took >= 29ms);
            DTFM_RANK_REQUIRE(took < 200ms);
        }
    });
}

TEST_CASE("mpi: corruption on the wire is caught by checked<>", "[mpi][checked]") {
    on_every_rank([] {
        fault_plan plan;
        plan.corrupt_rate = 1.0;
        checked<faulty<mpi>> t(faulty<mpi>(mpi(), plan));
        const message_tag tag{dtfm::channel::user, 11};
        std::vector<std::byte> buf(4096, std::byte{3});
        if (t.rank() == 0) {
            t.isend(1, tag, buf).wait();
        } else if (t.rank() == 1) {
            auto r = t.irecv(0, tag, buf);
            DTFM_RANK_REQUIRE_THROWS_AS(r.wait(), dtfm::wire_error);
        }
    });
}

TEST_CASE("mpi: staged sends leave once their copies land, in order, from the transport's own thread",
          "[mpi][staged]") {
    on_every_rank([] {
        dtfm::test::gated_copier copier;  // shut: the copies land when the thread below opens it
        staged<mpi, dtfm::test::gated_copier> t(mpi(), copier);
        const int next = (t.rank() + 1) % t.size(), prev = (t.rank() + t.size() - 1) % t.size();
        const message_tag tag{dtfm::channel::pipeline, 9};
        const std::size_t sizes[] = {1000, 0, 1 << 20};  // the last beyond Open MPI's eager limit
        std::vector<std::vector<std::uint32_t>> out;
        std::vector<staged<mpi, dtfm::test::gated_copier>::request_type> sends;
        for (int m = 0; m < 3; ++m) {
            out.emplace_back(sizes[m]);
            for (std::size_t i = 0; i < sizes[m]; ++i) out.back()[i] = dtfm::test::pattern(t.rank(), m, i);
            sends.push_back(t.isend(next, tag, bytes_of(out.back())));
        }
        for (auto& s : sends) DTFM_RANK_REQUIRE(!s.test());
        std::jthread device([open = copier.open] {
            std::this_thread::sleep_for(30ms);
            open->store(true);
        });
        for (int m = 0; m < 3; ++m) {
            std::vector<std::uint32_t> in(sizes[m] + 1, 0xDEADBEEF);
            DTFM_RANK_REQUIRE(t.irecv(prev, tag, bytes_of(in)).wait() == sizes[m] * sizeof(std::uint32_t));
            for (std::size_t i = 0; i < sizes[m]; ++i) DTFM_RANK_REQUIRE(in[i] == dtfm::test::pattern(prev, m, i));
            DTFM_RANK_REQUIRE(in[sizes[m]] == 0xDEADBEEF);
        }
        for (int m = 0; m < 3; ++m) DTFM_RANK_REQUIRE(sends[static_cast<std::size_t>(m)].wait() == sizes[m] * sizeof(std::uint32_t));
    });
}
