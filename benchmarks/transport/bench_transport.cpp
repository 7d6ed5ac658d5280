// dtfm_bench_transport (run under `mpirun -n 2`): point-to-point throughput of raw MPI_Send/Recv,
// dtfm's MPI transport, the in-process transport, and throttled<T> over both, message sizes
// 4 KiB–64 MiB. The claims are ratios in one run: transport/mpi ÷ transport/raw_mpi, and each
// throttled transport's measured rate and latency against the configured ones.
//
// Rank 0 runs Google Benchmark; before each timed loop it tells the receiving rank (MPI rank 1,
// or the second thread of an in-process pair) what to receive and how many times, so both sides
// run exactly the iterations the benchmark chose.
#include <benchmark/benchmark.h>
#include <mpi.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "dtfm/transport/inproc.hpp"
#include "dtfm/transport/mpi.hpp"
#include "dtfm/transport/mpi_environment.hpp"
#include "dtfm/transport/throttled.hpp"

namespace {

using namespace dtfm::transport;
using command = std::array<std::int64_t, 3>;  // what, bytes, iterations

enum class kind : std::int64_t { raw_mpi, plain, stream, ping, stop };

constexpr dtfm::message_tag data{dtfm::channel::user, 1};
constexpr dtfm::message_tag control{dtfm::channel::control, 1};
constexpr dtfm::message_tag ack{dtfm::channel::control, 2};
constexpr int raw_data_tag = 902;

// The emulated link of the throttled benchmarks: 1 Gbit/s, 2 ms one way.
constexpr double link_gbps = 1.0;
constexpr double link_delay_ms = 2.0;
// Sends kept in flight by a streaming sender, as a pipelined collective would.
constexpr std::size_t window = 8;
constexpr std::size_t largest = std::size_t{64} << 20;

// Buffers are allocated and touched once, outside every timed region: a first touch of fresh
// pages costs more than the copy being measured on some machines.
std::span<std::byte> send_buffer(std::size_t n) {
    static std::vector<std::byte> buffer(largest, std::byte{1});
    return std::span(buffer).first(n);
}
std::span<std::byte> receive_buffer(std::size_t n) {
    static std::vector<std::byte> buffer(largest, std::byte{2});
    return std::span(buffer).first(n);
}

link_model emulated_link() { return link_model::uniform(2, link_delay_ms, link_gbps); }

// Whether this is the batch's last iteration: it waits for the receiver's acknowledgement inside
// the timed loop, so the time covers every byte received, not only every byte handed over.
bool last_iteration(const benchmark::State& state, std::int64_t& i) {
    return ++i == static_cast<std::int64_t>(state.max_iterations);
}

// ---- the receiving side, shared by MPI rank 1 and the in-process pair ----------------------

// Receives one announced batch on `t` (plain) or `slow` (throttled) and acknowledges it on `t`.
template <class T, class Slow>
void receive_batch(const command& c, T& t, Slow& slow) {
    const auto bytes = receive_buffer(static_cast<std::size_t>(c[1]));
    switch (static_cast<kind>(c[0])) {
    case kind::plain:
        for (std::int64_t i = 0; i < c[2]; ++i) t.irecv(0, data, bytes).wait();
        break;
    case kind::stream: {
        // Every message lands in one buffer: only the timing is measured, not the content.
        std::deque<typename Slow::request_type> pending;
        for (std::int64_t i = 0; i < c[2]; ++i) {
            pending.push_back(slow.irecv(0, data, bytes));
            if (pending.size() >= window) {
                pending.front().wait();
                pending.pop_front();
            }
        }
        for (auto& p : pending) p.wait();
        break;
    }
    case kind::ping:
        for (std::int64_t i = 0; i < c[2]; ++i) {
            slow.irecv(0, data, bytes).wait();
            slow.isend(0, data, bytes).wait();
        }
        break;
    default:
        break;
    }
    t.isend(0, ack, {}).wait();
}

// ---- the sending side ------------------------------------------------------------------------

template <class T>
void announce(T& t, kind k, const benchmark::State& state) {
    const command c{static_cast<std::int64_t>(k), state.range(0), static_cast<std::int64_t>(state.max_iterations)};
    t.isend(1, control, std::as_bytes(std::span(c))).wait();
}

template <class T>
void plain_p2p(benchmark::State& state, T& t) {
    const auto buf = send_buffer(static_cast<std::size_t>(state.range(0)));
    announce(t, kind::plain, state);
    std::int64_t i = 0;
    for (auto _ : state) {
        t.isend(1, data, buf).wait();
        if (last_iteration(state, i)) t.irecv(1, ack, {}).wait();
    }
    state.SetBytesProcessed(state.iterations() * state.range(0));
}

// Streaming through the emulated link: the rate the receiver sees against the configured one,
// with the one latency of the batch taken out so the counter measures bandwidth alone.
template <class T, class Slow>
void throttled_p2p(benchmark::State& state, T& t, Slow& slow) {
    const auto buf = send_buffer(static_cast<std::size_t>(state.range(0)));
    announce(t, kind::stream, state);
    const auto start = std::chrono::steady_clock::now();
    std::deque<typename Slow::request_type> pending;
    std::int64_t i = 0;
    for (auto _ : state) {
        pending.push_back(slow.isend(1, data, buf));
        if (pending.size() >= window) {
            pending.front().wait();
            pending.pop_front();
        }
        if (last_iteration(state, i)) {
            for (auto& p : pending) p.wait();
            t.irecv(1, ack, {}).wait();
        }
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double bytes = static_cast<double>(state.iterations()) * static_cast<double>(state.range(0));
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
    const double configured = link_gbps * 1e9 / 8;
    const double measured = bytes / (elapsed - link_delay_ms / 1e3);
    state.counters["configured_bytes_per_second"] = configured;
    state.counters["measured_bytes_per_second"] = measured;
    state.counters["measured_over_configured"] = measured / configured;
}

// Ping-pong: half the round trip, less the transfer time, against the configured latency.
template <class T, class Slow>
void throttled_latency(benchmark::State& state, T& t, Slow& slow) {
    const auto buf = send_buffer(static_cast<std::size_t>(state.range(0)));
    announce(t, kind::ping, state);
    const auto start = std::chrono::steady_clock::now();
    std::int64_t i = 0;
    for (auto _ : state) {
        auto r = slow.irecv(1, data, receive_buffer(buf.size()));
        slow.isend(1, data, buf).wait();
        r.wait();
        if (last_iteration(state, i)) t.irecv(1, ack, {}).wait();
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double transfer = static_cast<double>(state.range(0)) / (link_gbps * 1e9 / 8);
    const double measured = elapsed / static_cast<double>(state.iterations()) / 2 - transfer;
    state.counters["configured_latency_s"] = link_delay_ms / 1e3;
    state.counters["measured_latency_s"] = measured;
    state.counters["excess_latency_s"] = measured - link_delay_ms / 1e3;
}

// ---- MPI: rank 0 measures, rank 1 serves ------------------------------------------------------

struct mpi_world {
    mpi plain;
    throttled<mpi> slow{mpi(), emulated_link()};
};
mpi_world* world = nullptr;

void serve_mpi() {
    for (;;) {
        command c{};
        world->plain.irecv(0, control, std::as_writable_bytes(std::span(c))).wait();
        const auto k = static_cast<kind>(c[0]);
        if (k == kind::stop) return;
        if (k == kind::raw_mpi) {
            const auto bytes = receive_buffer(static_cast<std::size_t>(c[1]));
            for (std::int64_t i = 0; i < c[2]; ++i) {
                MPI_Recv(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, 0, raw_data_tag, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE);
            }
            world->plain.isend(0, ack, {}).wait();
        } else {
            receive_batch(c, world->plain, world->slow);
        }
    }
}

void bm_raw_mpi(benchmark::State& state) {
    const auto buf = send_buffer(static_cast<std::size_t>(state.range(0)));
    announce(world->plain, kind::raw_mpi, state);
    std::int64_t i = 0;
    for (auto _ : state) {
        MPI_Send(buf.data(), static_cast<int>(buf.size()), MPI_BYTE, 1, raw_data_tag, MPI_COMM_WORLD);
        if (last_iteration(state, i)) world->plain.irecv(1, ack, {}).wait();
    }
    state.SetBytesProcessed(state.iterations() * state.range(0));
}
void bm_mpi(benchmark::State& state) { plain_p2p(state, world->plain); }
void bm_throttled_mpi(benchmark::State& state) { throttled_p2p(state, world->plain, world->slow); }
void bm_throttled_mpi_latency(benchmark::State& state) { throttled_latency(state, world->plain, world->slow); }

// ---- in-process: two threads of rank 0; the second serves like MPI rank 1 ------------------------

class inproc_pair {
public:
    inproc_pair()
        : thread_([this] {
              run_inproc(2, [this](inproc& t) {
                  throttled<inproc> slow(t, emulated_link());
                  if (t.rank() == 1) {
                      for (;;) {
                          command c{};
                          t.irecv(0, control, std::as_writable_bytes(std::span(c))).wait();
                          if (static_cast<kind>(c[0]) == kind::stop) return;
                          receive_batch(c, t, slow);
                      }
                  }
                  {
                      std::lock_guard lock(mutex_);
                      rank0_ = &t;
                      slow0_ = &slow;
                  }
                  changed_.notify_all();
                  std::unique_lock lock(mutex_);
                  changed_.wait(lock, [this] { return done_; });
                  const command stop{static_cast<std::int64_t>(kind::stop), 0, 0};
                  t.isend(1, control, std::as_bytes(std::span(stop))).wait();
              });
          }) {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [this] { return rank0_ != nullptr; });
    }
    ~inproc_pair() {
        {
            std::lock_guard lock(mutex_);
            done_ = true;
        }
        changed_.notify_all();
        thread_.join();
    }
    inproc& plain() { return *rank0_; }
    throttled<inproc>& slow() { return *slow0_; }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    inproc* rank0_ = nullptr;
    throttled<inproc>* slow0_ = nullptr;
    bool done_ = false;
    std::thread thread_;
};
std::optional<inproc_pair> pair;

void bm_inproc(benchmark::State& state) { plain_p2p(state, pair->plain()); }
void bm_throttled_inproc(benchmark::State& state) { throttled_p2p(state, pair->plain(), pair->slow()); }
void bm_throttled_inproc_latency(benchmark::State& state) {
    throttled_latency(state, pair->plain(), pair->slow());
}

void sizes(benchmark::internal::Benchmark* b) {
    for (std::int64_t n = 4 << 10; n <= (64 << 20); n *= 4) b->Arg(n);
    b->UseRealTime()->Unit(benchmark::kMicrosecond);
}
void latency_sizes(benchmark::internal::Benchmark* b) {
    b->Arg(8)->Arg(64 << 10)->UseRealTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(bm_raw_mpi)->Name("transport/raw_mpi/p2p")->Apply(sizes);
BENCHMARK(bm_mpi)->Name("transport/mpi/p2p")->Apply(sizes);
BENCHMARK(bm_inproc)->Name("transport/inproc/p2p")->Apply(sizes);
BENCHMARK(bm_throttled_mpi)->Name("transport/throttled/p2p")->Apply(sizes)->MinTime(1.0);
BENCHMARK(bm_throttled_inproc)->Name("transport/throttled_inproc/p2p")->Apply(sizes)->MinTime(1.0);
BENCHMARK(bm_throttled_mpi_latency)->Name("transport/throttled/latency")->Apply(latency_sizes);
BENCHMARK(bm_throttled_inproc_latency)->Name("transport/throttled_inproc/latency")->Apply(latency_sizes);

int main(int argc, char** argv) {
    mpi_environment env(argc, argv);
    int rank = 0, size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != 2) {
        if (rank == 0) std::fprintf(stderr, "dtfm_bench_transport: run with mpirun -n 2 (got %d ranks)\n", size);
        return 2;
    }
    (void)send_buffer(0);
    (void)receive_buffer(0);
    {
        mpi_world w;
        world = &w;
        if (rank == 1) {
            serve_mpi();
        } else {
            pair.emplace();
            benchmark::Initialize(&argc, argv);
            benchmark::RunSpecifiedBenchmarks();
            benchmark::Shutdown();
            pair.reset();
            const command stop{static_cast<std::int64_t>(kind::stop), 0, 0};
            world->plain.isend(1, control, std::as_bytes(std::span(stop))).wait();
        }
        MPI_Barrier(MPI_COMM_WORLD);
        world = nullptr;
    }
    return 0;
}
