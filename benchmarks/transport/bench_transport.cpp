// dtfm_bench_transport (run under `mpirun -n 2`): point-to-point throughput of raw MPI_Send/Recv,
// dtfm's MPI transport, the in-process transport and throttled<mpi>, message sizes 4 KiB–64 MiB.
// The claims are ratios in one run: transport/mpi ÷ transport/raw_mpi, and throttled's measured
// rate and latency against the configured ones.
//
// Rank 0 runs Google Benchmark; before each timed loop it tells rank 1 what to receive and how
// many times, so both ranks run exactly the iterations the benchmark chose.
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
#include <thread>
#include <vector>

#include "dtfm/transport/inproc.hpp"
#include "dtfm/transport/mpi.hpp"
#include "dtfm/transport/mpi_environment.hpp"
#include "dtfm/transport/throttled.hpp"

namespace {

using namespace dtfm::transport;

enum class kind : std::int64_t { raw_mpi, dtfm_mpi, throttled_stream, throttled_ping, stop };

constexpr int command_tag = 900;
constexpr int ack_tag = 901;
constexpr int data_tag = 902;
constexpr dtfm::message_tag data{dtfm::channel::user, 1};

// The emulated link of the throttled benchmarks: 1 Gbit/s, 2 ms one way.
constexpr double link_gbps = 1.0;
constexpr double link_delay_ms = 2.0;
// Sends kept in flight by a streaming sender, as a pipelined collective would.
constexpr std::size_t window = 8;
constexpr std::size_t largest = std::size_t{64} << 20;

// Buffers are allocated and touched once, outside every timed region: a first touch of fresh
// pages costs more than the copy being measured on some machines.
std::span<std::byte> buffer_of(std::size_t n) {
    static std::vector<std::byte> buffer(largest, std::byte{1});
    return std::span(buffer).first(n);
}
std::span<std::byte> receive_buffer_of(std::size_t n) {
    static std::vector<std::byte> buffer(largest, std::byte{2});
    return std::span(buffer).first(n);
}

struct world_state {
    std::unique_ptr<mpi> dtfm_mpi;
    std::unique_ptr<throttled<mpi>> slow;
};
world_state* world = nullptr;

void command(kind k, std::int64_t bytes, std::int64_t iterations) {
    std::array<std::int64_t, 3> c{static_cast<std::int64_t>(k), bytes, iterations};
    MPI_Send(c.data(), 3, MPI_INT64_T, 1, command_tag, MPI_COMM_WORLD);
}

void wait_ack() { MPI_Recv(nullptr, 0, MPI_BYTE, 1, ack_tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE); }

// Whether this is the batch's last iteration: it waits for the receiver's acknowledgement inside
// the timed loop, so the time covers every byte received, not only every byte handed over.
bool last_iteration(const benchmark::State& state, std::int64_t& i) {
    return ++i == static_cast<std::int64_t>(state.max_iterations);
}

// Rank 1: receive what rank 0 announces, acknowledge the end of each batch.
void serve() {
    for (;;) {
        std::array<std::int64_t, 3> c{};
        MPI_Recv(c.data(), 3, MPI_INT64_T, 0, command_tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        const auto k = static_cast<kind>(c[0]);
        if (k == kind::stop) return;
        const auto bytes = receive_buffer_of(static_cast<std::size_t>(c[1]));
        switch (k) {
        case kind::raw_mpi:
            for (std::int64_t i = 0; i < c[2]; ++i) {
                MPI_Recv(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, 0, data_tag, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE);
            }
            break;
        case kind::dtfm_mpi:
            for (std::int64_t i = 0; i < c[2]; ++i) world->dtfm_mpi->irecv(0, data, bytes).wait();
            break;
        case kind::throttled_stream: {
            std::deque<throttled<mpi>::request_type> pending;
            for (std::int64_t i = 0; i < c[2]; ++i) {
                // Receive into one buffer: the content is not checked, only the timing.
                pending.push_back(world->slow->irecv(0, data, bytes));
                if (pending.size() >= window) {
                    pending.front().wait();
                    pending.pop_front();
                }
            }
            for (auto& p : pending) p.wait();
            break;
        }
        case kind::throttled_ping:
            for (std::int64_t i = 0; i < c[2]; ++i) {
                world->slow->irecv(0, data, bytes).wait();
                world->slow->isend(0, data, bytes).wait();
            }
            break;
        case kind::stop:
            return;
        }
        MPI_Send(nullptr, 0, MPI_BYTE, 0, ack_tag, MPI_COMM_WORLD);
    }
}

void bm_raw_mpi(benchmark::State& state) {
    const auto buf = buffer_of(static_cast<std::size_t>(state.range(0)));
    command(kind::raw_mpi, state.range(0), static_cast<std::int64_t>(state.max_iterations));
    std::int64_t i = 0;
    for (auto _ : state) {
        MPI_Send(buf.data(), static_cast<int>(buf.size()), MPI_BYTE, 1, data_tag, MPI_COMM_WORLD);
        if (last_iteration(state, i)) wait_ack();
    }
    state.SetBytesProcessed(state.iterations() * state.range(0));
}

void bm_dtfm_mpi(benchmark::State& state) {
    const auto buf = buffer_of(static_cast<std::size_t>(state.range(0)));
    command(kind::dtfm_mpi, state.range(0), static_cast<std::int64_t>(state.max_iterations));
    std::int64_t i = 0;
    for (auto _ : state) {
        world->dtfm_mpi->isend(1, data, buf).wait();
        if (last_iteration(state, i)) wait_ack();
    }
    state.SetBytesProcessed(state.iterations() * state.range(0));
}

// Two threads of this process as inproc ranks; rank 1 answers batches like serve() does.
class inproc_pair {
public:
    inproc_pair()
        : thread_([this] {
              run_inproc(2, [this](inproc& t) {
                  if (t.rank() == 0) {
                      {
                          std::lock_guard lock(mutex_);
                          rank0_ = &t;
                      }
                      ready_.notify_all();
                      std::unique_lock lock(mutex_);
                      ready_.wait(lock, [this] { return done_; });
                      const std::int64_t stop = -1;
                      t.isend(1, {dtfm::channel::control, 0}, std::as_bytes(std::span(&stop, 1))).wait();
                      return;
                  }
                  for (;;) {
                      std::array<std::int64_t, 2> c{};
                      t.irecv(0, {dtfm::channel::control, 0}, std::as_writable_bytes(std::span(c))).wait();
                      if (c[0] < 0) return;
                      const auto buf = receive_buffer_of(static_cast<std::size_t>(c[0]));
                      for (std::int64_t i = 0; i < c[1]; ++i) t.irecv(0, data, buf).wait();
                      t.isend(0, {dtfm::channel::control, 1}, {}).wait();
                  }
              });
          }) {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [this] { return rank0_ != nullptr; });
    }
    ~inproc_pair() {
        {
            std::lock_guard lock(mutex_);
            done_ = true;
        }
        ready_.notify_all();
        thread_.join();
    }
    inproc& rank0() { return *rank0_; }

private:
    std::mutex mutex_;
    std::condition_variable ready_;
    inproc* rank0_ = nullptr;
    bool done_ = false;
    std::thread thread_;
};

void bm_inproc(benchmark::State& state) {
    static inproc_pair pair;
    auto& t = pair.rank0();
    const auto buf = buffer_of(static_cast<std::size_t>(state.range(0)));
    std::array<std::int64_t, 2> c{state.range(0), static_cast<std::int64_t>(state.max_iterations)};
    t.isend(1, {dtfm::channel::control, 0}, std::as_bytes(std::span(c))).wait();
    std::int64_t i = 0;
    for (auto _ : state) {
        t.isend(1, data, buf).wait();
        if (last_iteration(state, i)) t.irecv(1, {dtfm::channel::control, 1}, {}).wait();
    }
    state.SetBytesProcessed(state.iterations() * state.range(0));
}

// Streaming through the emulated link: the rate the receiver sees against the configured one.
// The one latency of the batch is taken out, so the counter measures bandwidth alone.
void bm_throttled(benchmark::State& state) {
    const auto buf = buffer_of(static_cast<std::size_t>(state.range(0)));
    command(kind::throttled_stream, state.range(0), static_cast<std::int64_t>(state.max_iterations));
    const auto start = std::chrono::steady_clock::now();
    std::deque<throttled<mpi>::request_type> pending;
    std::int64_t i = 0;
    for (auto _ : state) {
        pending.push_back(world->slow->isend(1, data, buf));
        if (pending.size() >= window) {
            pending.front().wait();
            pending.pop_front();
        }
        if (last_iteration(state, i)) {
            for (auto& p : pending) p.wait();
            wait_ack();
        }
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double bytes = static_cast<double>(state.iterations()) * static_cast<double>(state.range(0));
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
    state.counters["configured_bytes_per_second"] = link_gbps * 1e9 / 8;
    state.counters["measured_bytes_per_second"] = bytes / (elapsed - link_delay_ms / 1e3);
}

// Ping-pong of small messages: half the round trip against the configured one-way latency.
void bm_throttled_latency(benchmark::State& state) {
    const auto buf = buffer_of(static_cast<std::size_t>(state.range(0)));
    command(kind::throttled_ping, state.range(0), static_cast<std::int64_t>(state.max_iterations));
    const auto start = std::chrono::steady_clock::now();
    std::int64_t i = 0;
    for (auto _ : state) {
        auto r = world->slow->irecv(1, data, receive_buffer_of(buf.size()));
        world->slow->isend(1, data, buf).wait();
        r.wait();
        if (last_iteration(state, i)) wait_ack();
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double transfer = static_cast<double>(state.range(0)) / (link_gbps * 1e9 / 8);
    state.counters["configured_latency_s"] = link_delay_ms / 1e3;
    state.counters["measured_latency_s"] =
        elapsed / static_cast<double>(state.iterations()) / 2 - transfer;
}

void sizes(benchmark::internal::Benchmark* b) {
    for (std::int64_t n = 4 << 10; n <= (64 << 20); n *= 4) b->Arg(n);
    b->UseRealTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace

BENCHMARK(bm_raw_mpi)->Name("transport/raw_mpi/p2p")->Apply(sizes);
BENCHMARK(bm_dtfm_mpi)->Name("transport/mpi/p2p")->Apply(sizes);
BENCHMARK(bm_inproc)->Name("transport/inproc/p2p")->Apply(sizes);
BENCHMARK(bm_throttled)->Name("transport/throttled/p2p")->Apply(sizes)->MinTime(1.0);
BENCHMARK(bm_throttled_latency)->Name("transport/throttled/latency")->Arg(8)->Arg(64 << 10)->UseRealTime()->Unit(
    benchmark::kMillisecond);

int main(int argc, char** argv) {
    mpi_environment env(argc, argv);
    int rank = 0, size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != 2) {
        if (rank == 0) std::fprintf(stderr, "dtfm_bench_transport: run with mpirun -n 2 (got %d ranks)\n", size);
        return 2;
    }
    world_state state;
    state.dtfm_mpi = std::make_unique<mpi>();
    state.slow = std::make_unique<throttled<mpi>>(mpi(), link_model::uniform(2, link_delay_ms, link_gbps));
    world = &state;
    (void)buffer_of(0);
    (void)receive_buffer_of(0);

    if (rank == 1) {
        serve();
    } else {
        benchmark::Initialize(&argc, argv);
        benchmark::RunSpecifiedBenchmarks();
        benchmark::Shutdown();
        command(kind::stop, 0, 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    world = nullptr;
    return 0;
}
