// The behaviour every dtfm transport must have, written once as templates over the transport and
// run by the unit tests (each transport over inproc threads) and the MPI tests (over mpirun).
// Each check runs on every rank of a group of at least two and reports with DTFM_RANK_REQUIRE.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <thread>
#include <vector>

#include "dtfm/concepts/transport.hpp"
#include "dtfm/error.hpp"
#include "dtfm/transport/wait.hpp"
#include "rank_check.hpp"

namespace dtfm::test {

template <class V>
std::span<const std::byte> bytes_of(const std::vector<V>& v) {
    return std::as_bytes(std::span(v));
}
template <class V>
std::span<std::byte> bytes_of(std::vector<V>& v) {
    return std::as_writable_bytes(std::span(v));
}

// A value that tells sender, message and position apart, so a misrouted byte is caught.
inline std::uint32_t pattern(int rank, int message, std::size_t i) {
    return static_cast<std::uint32_t>(rank) * 1000003u + static_cast<std::uint32_t>(message) * 7919u +
           static_cast<std::uint32_t>(i);
}

// Every rank passes buffers of several sizes to the next rank and checks what the previous sent.
template <concepts::transport T>
void check_ring_exchange(T& t) {
    const int next = (t.rank() + 1) % t.size();
    const int prev = (t.rank() + t.size() - 1) % t.size();
    int message = 0;
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{257}, std::size_t{40000}}) {
        std::vector<std::uint32_t> out(n), in(n + 1, 0xDEADBEEF);
        for (std::size_t i = 0; i < n; ++i) out[i] = pattern(t.rank(), message, i);
        const message_tag tag{channel::data_parallel, static_cast<std::uint32_t>(message)};
        auto r = t.irecv(prev, tag, bytes_of(in));
        auto s = t.isend(next, tag, bytes_of(out));
        DTFM_RANK_REQUIRE(s.wait() == n * sizeof(std::uint32_t));
        DTFM_RANK_REQUIRE(r.wait() == n * sizeof(std::uint32_t));
        for (std::size_t i = 0; i < n; ++i) DTFM_RANK_REQUIRE(in[i] == pattern(prev, message, i));
        DTFM_RANK_REQUIRE(in[n] == 0xDEADBEEF);
        ++message;
    }
}

// Rank 0 interleaves two channels to rank 1; rank 1 drains the second channel first. Each
// channel keeps its own order and nothing crosses between them.
template <concepts::transport T>
void check_channels_and_order(T& t) {
    constexpr int count = 20;
    const message_tag pp{channel::pipeline, 3};
    const message_tag dp{channel::data_parallel, 3};
    if (t.rank() == 0) {
        std::vector<typename T::request_type> sends;
        std::vector<std::vector<int>> payloads;
        payloads.reserve(2 * count);
        for (int i = 0; i < count; ++i) {
            payloads.push_back({i});
            sends.push_back(t.isend(1, dp, bytes_of(payloads.back())));
            payloads.push_back({100 + i});
            sends.push_back(t.isend(1, pp, bytes_of(payloads.back())));
        }
        for (auto& s : sends) s.wait();
    } else if (t.rank() == 1) {
        for (int i = 0; i < count; ++i) {
            std::vector<int> v{-1};
            DTFM_RANK_REQUIRE(t.irecv(0, pp, bytes_of(v)).wait() == sizeof(int));
            DTFM_RANK_REQUIRE(v[0] == 100 + i);
        }
        for (int i = 0; i < count; ++i) {
            std::vector<int> v{-1};
            t.irecv(0, dp, bytes_of(v)).wait();
            DTFM_RANK_REQUIRE(v[0] == i);
        }
    }
}

// Splits the group into a stages × replicas mesh (replicas = 2 when the size is even) and passes
// a token around each pipeline group and each data-parallel group.
template <concepts::transport T>
void check_mesh_split(T& t) {
    const int replicas = t.size() % 2 == 0 ? 2 : 1;
    const int stages = t.size() / replicas;
    const int stage = t.rank() % stages;
    const int replica = t.rank() / stages;
    T pipeline = t.split(replica, stage);
    T data_parallel = t.split(stage, replica);
    DTFM_RANK_REQUIRE(pipeline.size() == stages);
    DTFM_RANK_REQUIRE(pipeline.rank() == stage);
    DTFM_RANK_REQUIRE(data_parallel.size() == replicas);
    DTFM_RANK_REQUIRE(data_parallel.rank() == replica);
    for (T* g : {&pipeline, &data_parallel}) {
        const message_tag tag{channel::user, 0};
        std::vector<int> out{t.rank()}, in{-1};
        const int next = (g->rank() + 1) % g->size();
        const int prev = (g->rank() + g->size() - 1) % g->size();
        auto r = g->irecv(prev, tag, bytes_of(in));
        g->isend(next, tag, bytes_of(out)).wait();
        r.wait();
        const int expected = g == &pipeline ? replica * stages + (stage + stages - 1) % stages
                                            : ((replica + replicas - 1) % replicas) * stages + stage;
        DTFM_RANK_REQUIRE(in[0] == expected);
    }
}

// A receive nobody answers: wait_for reports false, wait_within raises timeout_error after the
// timeout and not much later, and the abandoned receive never takes the next real message.
template <concepts::transport T>
void check_receive_timeout(T& t) {
    using namespace std::chrono_literals;
    const message_tag silent{channel::control, 77};
    const message_tag go{channel::control, 78};
    if (t.rank() == 1) {
        std::vector<int> in{-1};
        {
            auto r = t.irecv(0, silent, bytes_of(in));
            DTFM_RANK_REQUIRE(!r.test());
            DTFM_RANK_REQUIRE(!r.wait_for(5ms));
            const auto start = std::chrono::steady_clock::now();
            DTFM_RANK_REQUIRE_THROWS_AS(transport::wait_within(r, 60ms, "receive from rank 0"), timeout_error);
            const auto waited = std::chrono::steady_clock::now() - start;
            DTFM_RANK_REQUIRE(waited >= 60ms);
            DTFM_RANK_REQUIRE(waited < 2s);  // generous: a loaded 2-core machine
        }
        std::vector<int> token{1};
        t.isend(0, go, bytes_of(token)).wait();
        std::vector<int> real{-1};
        DTFM_RANK_REQUIRE(t.irecv(0, silent, bytes_of(real)).wait() == sizeof(int));
        DTFM_RANK_REQUIRE(real[0] == 5);
        DTFM_RANK_REQUIRE(in[0] == -1);
    } else if (t.rank() == 0) {
        std::vector<int> token{0};
        t.irecv(1, go, bytes_of(token)).wait();
        std::vector<int> real{5};
        t.isend(1, silent, bytes_of(real)).wait();
    }
}

// wait_for(nanoseconds::max()) means "no deadline": it waits for the message. (now() + max
// overflows to a time already past, which made wait_for return false at once.)
template <concepts::transport T>
void check_unbounded_wait_for(T& t) {
    using namespace std::chrono_literals;
    constexpr auto forever = std::chrono::nanoseconds::max();
    const message_tag tag{channel::control, 79};
    if (t.rank() == 1) {
        std::vector<int> in{-1};
        auto r = t.irecv(0, tag, bytes_of(in));
        DTFM_RANK_REQUIRE(r.wait_for(forever));
        DTFM_RANK_REQUIRE(r.wait() == sizeof(int));
        DTFM_RANK_REQUIRE(in[0] == 42);
    } else if (t.rank() == 0) {
        std::this_thread::sleep_for(20ms);  // the receiver is waiting by then
        std::vector<int> out{42};
        auto s = t.isend(1, tag, bytes_of(out));
        DTFM_RANK_REQUIRE(s.wait_for(forever));
        DTFM_RANK_REQUIRE(s.wait() == sizeof(int));
    }
}

// Bad peers are transport_errors, not crashes.
template <concepts::transport T>
void check_bad_peers(T& t) {
    std::vector<std::byte> b(4);
    DTFM_RANK_REQUIRE_THROWS_AS(t.isend(t.size(), {channel::user, 0}, b), transport_error);
    DTFM_RANK_REQUIRE_THROWS_AS(t.irecv(-1, {channel::user, 0}, b), transport_error);
}

template <concepts::transport T>
void check_transport(T& t) {
    check_ring_exchange(t);
    check_channels_and_order(t);
    check_mesh_split(t);
    check_receive_timeout(t);
    check_unbounded_wait_for(t);
    check_bad_peers(t);
}

}  // namespace dtfm::test
