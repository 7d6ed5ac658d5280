// dtfm_bench_collective (run under `mpirun -n 2` and `-n 4`): all-reduce of float gradients,
// 1–256 MiB, by MPI_Allreduce (the baseline), dtfm's ring_allreduce and compressed_allreduce with
// two cocktail compressors over the MPI transport, and the ring and the compressed all-reduces
// over throttled<mpi> with every link 1 Gbit/s and 10 ms one way. The claims are ratios in one
// run: ring ÷ mpi_allreduce, and on throttled links each compressed all-reduce's speed-up over the
// throttled ring against its compression ratio (the counter `ratio`).
//
// Rank 0 runs Google Benchmark; before each timed loop it broadcasts what to run and how many
// times, so every rank runs exactly the iterations the benchmark chose. Each iteration restores
// the rank's input, meets the others at a barrier (untimed), then times one all-reduce
// (manual time): an all-reduce overwrites its buffer, and a compressed one with mostly zeros.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <mpi.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <ratio>
#include <span>
#include <string>
#include <vector>

#include "dtfm/collective/compressed_allreduce.hpp"
#include "dtfm/collective/ring_allreduce.hpp"
#include "dtfm/compress/cocktail.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/compress/randomk.hpp"
#include "dtfm/compress/topk.hpp"
#include "dtfm/transport/link_model.hpp"
#include "dtfm/transport/mpi.hpp"
#include "dtfm/transport/mpi_environment.hpp"
#include "dtfm/transport/throttled.hpp"

namespace {

using namespace dtfm;
using command = std::array<std::int64_t, 3>;  // what, bytes, iterations

enum class kind : std::int64_t {
    mpi_allreduce,
    ring,
    cocktail,
    cocktail_mild,
    throttled_ring,
    throttled_cocktail,
    throttled_cocktail_mild,
    stop
};

// The emulated link of the throttled benchmarks: 1 Gbit/s, 10 ms one way, between every pair.
constexpr double link_gbps = 1.0;
constexpr double link_delay_ms = 10.0;
constexpr std::size_t largest = std::size_t{256} << 20;

// CocktailSGD's default (p = 0.1, top 20 %, 4 bits: about 1/175 of the bytes), and a milder one
// (half the values drawn, the larger half of those kept, 8 bits: about 1/12.8) whose smaller
// ratio a latency-bound link can still turn into a speed-up.
using cocktail_default = compress::cocktail<>;
using cocktail_mild = compress::cocktail<compress::randomk<std::ratio<1, 2>, false>,
                                         compress::topk<std::ratio<1, 2>>, compress::quantize<8>>;

struct world_t {
    transport::mpi plain;
    transport::throttled<transport::mpi> slow;
    int rank = 0;
    int size = 0;
};
world_t* world = nullptr;

// Every rank's input: seeded normal values with a scale that varies by "layer" (64K values), as
// gradients do, so top-k has something to choose. Buffers are allocated and touched once,
// outside every timed region: a first touch of fresh pages costs more than a copy here.
std::vector<float>& input() {
    static std::vector<float> values = [] {
        std::vector<float> v(largest / sizeof(float));
        std::mt19937_64 rng(0x5eed0000u + static_cast<unsigned>(world->rank));
        std::normal_distribution<float> normal(0.0f, 1.0f);
        std::uniform_real_distribution<float> scale(0.01f, 1.0f);
        float s = 1.0f;
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (i % 65536 == 0) s = scale(rng);
            v[i] = s * normal(rng);
        }
        return v;
    }();
    return values;
}
std::vector<float>& buffer() {
    static std::vector<float> values(largest / sizeof(float), 1.0f);
    return values;
}

// The compressed all-reduces' options: the defaults, or slices of DTFM_BENCH_SLICE_BYTES bytes
// (how the default slice size was chosen; every rank reads the same environment).
collective::options compressed_options() {
    collective::options o{};
    if (const char* s = std::getenv("DTFM_BENCH_SLICE_BYTES")) o.slice_bytes = std::strtoull(s, nullptr, 10);
    return o;
}

// The collective of the current benchmark, kept while kind and size stay the same (across
// repetitions and Google Benchmark's trial runs), so its scratch and error buffers are made and
// touched by an untimed warm-up call, not inside the timed loop.
class runner {
public:
    void prepare(kind k, std::size_t bytes) {
        if (k == kind_ && bytes == bytes_) return;
        call_ = nullptr;
        ratio_ = nullptr;
        kind_ = k;
        bytes_ = bytes;
        switch (k) {
        case kind::mpi_allreduce:
            call_ = [](std::span<float> d) {
                MPI_Allreduce(MPI_IN_PLACE, d.data(), static_cast<int>(d.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                const float inv = 1.0f / static_cast<float>(world->size);
                for (auto& v : d) v *= inv;
            };
            break;
        case kind::ring: use_ring(world->plain); break;
        case kind::throttled_ring: use_ring(world->slow); break;
        case kind::cocktail: use_compressed<cocktail_default>(world->plain); break;
        case kind::cocktail_mild: use_compressed<cocktail_mild>(world->plain); break;
        case kind::throttled_cocktail: use_compressed<cocktail_default>(world->slow); break;
        case kind::throttled_cocktail_mild: use_compressed<cocktail_mild>(world->slow); break;
        case kind::stop: break;
        }
        (void)iteration();
    }

    // One all-reduce of the restored input, in seconds, timed from a common start.
    double iteration() {
        const std::size_t n = bytes_ / sizeof(float);
        std::memcpy(buffer().data(), input().data(), bytes_);
        MPI_Barrier(MPI_COMM_WORLD);
        const auto start = std::chrono::steady_clock::now();
        call_(std::span(buffer()).first(n));
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }

    bool compressed() const { return static_cast<bool>(ratio_); }
    double ratio() const { return ratio_ ? ratio_() : 1.0; }

private:
    template <class Tr>
    void use_ring(Tr& t) {
        auto ring = std::make_shared<collective::ring_allreduce<float>>();
        call_ = [ring, &t](std::span<float> d) { ring->allreduce(t, d).wait(); };
    }
    template <class C, class Tr>
    void use_compressed(Tr& t) {
        // options given: cocktail's explicit default constructor keeps the `prototype = {}` default
        // argument from compiling.
        auto c = std::make_shared<collective::compressed_allreduce<C>>(compressed_options());
        call_ = [c, &t](std::span<float> d) { c->allreduce(t, d).wait(); };
        ratio_ = [c] { return c->sent().ratio(); };
    }

    kind kind_ = kind::stop;
    std::size_t bytes_ = 0;
    std::function<void(std::span<float>)> call_;
    std::function<double()> ratio_;
};
runner* current = nullptr;

// Rank 0: tell every rank what the next timed loop runs, then run it with them.
void bm_collective(benchmark::State& state, kind k) {
    command c{static_cast<std::int64_t>(k), state.range(0), static_cast<std::int64_t>(state.max_iterations)};
    MPI_Bcast(c.data(), static_cast<int>(c.size()), MPI_INT64_T, 0, MPI_COMM_WORLD);
    current->prepare(k, static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) state.SetIterationTime(current->iteration());
    state.SetBytesProcessed(state.iterations() * state.range(0));
    if (current->compressed()) state.counters["ratio"] = current->ratio();
}

// The other ranks: run what rank 0 announces until it says stop.
void serve() {
    for (;;) {
        command c{};
        MPI_Bcast(c.data(), static_cast<int>(c.size()), MPI_INT64_T, 0, MPI_COMM_WORLD);
        const auto k = static_cast<kind>(c[0]);
        if (k == kind::stop) return;
        current->prepare(k, static_cast<std::size_t>(c[1]));
        for (std::int64_t i = 0; i < c[2]; ++i) (void)current->iteration();
    }
}

void sizes(benchmark::internal::Benchmark* b) {
    for (std::int64_t n = std::int64_t{1} << 20; n <= static_cast<std::int64_t>(largest); n *= 4) b->Arg(n);
    b->UseManualTime()->Unit(benchmark::kMillisecond);
}
// A 256 MiB throttled ring takes over 2 s: one iteration per repetition is plenty, and Google
// Benchmark stops after its first trial when that alone passes the minimum time.
void fast_sizes(benchmark::internal::Benchmark* b) {
    sizes(b);
    b->MinTime(0.3);
}
void slow_sizes(benchmark::internal::Benchmark* b) {
    sizes(b);
    b->MinTime(0.2);
}

}  // namespace

BENCHMARK_CAPTURE(bm_collective, mpi, kind::mpi_allreduce)->Name("collective/mpi_allreduce")->Apply(fast_sizes);
BENCHMARK_CAPTURE(bm_collective, ring, kind::ring)->Name("collective/ring_allreduce")->Apply(fast_sizes);
BENCHMARK_CAPTURE(bm_collective, cocktail, kind::cocktail)->Name("collective/cocktail_allreduce")->Apply(fast_sizes);
BENCHMARK_CAPTURE(bm_collective, cocktail_mild, kind::cocktail_mild)
    ->Name("collective/cocktail_mild_allreduce")
    ->Apply(fast_sizes);
BENCHMARK_CAPTURE(bm_collective, throttled_ring, kind::throttled_ring)
    ->Name("collective/throttled_ring_allreduce")
    ->Apply(slow_sizes);
BENCHMARK_CAPTURE(bm_collective, throttled_cocktail, kind::throttled_cocktail)
    ->Name("collective/throttled_cocktail_allreduce")
    ->Apply(slow_sizes);
BENCHMARK_CAPTURE(bm_collective, throttled_cocktail_mild, kind::throttled_cocktail_mild)
    ->Name("collective/throttled_cocktail_mild_allreduce")
    ->Apply(slow_sizes);

int main(int argc, char** argv) {
    // MPI_Allreduce allocates a temporary buffer of the message's size on every call; glibc
    // serves that from fresh mmap'd pages above 32 MiB, and page faults are slow on these VMs
    // (a 256 MiB MPI_Allreduce took 3-7 s instead of 0.2 s). Keeping freed memory in the heap
    // measures the baseline at its best.
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    transport::mpi_environment env(argc, argv);
    int rank = 0, size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size < 2) {
        std::fprintf(stderr, "dtfm_bench_collective: run with mpirun -n 2 or more (got %d rank)\n", size);
        return 2;
    }
    {
        // Braced initialisation runs in order: every rank duplicates MPI_COMM_WORLD the same way.
        world_t w{transport::mpi(),
                  transport::throttled<transport::mpi>(transport::mpi(),
                                                       transport::link_model::uniform(size, link_delay_ms, link_gbps)),
                  rank, size};
        world = &w;
        (void)input();
        (void)buffer();
        runner r;
        current = &r;
        if (rank == 0) {
            // report.py names the section after the rank count (one section per mpirun -n).
            benchmark::AddCustomContext("mpi_ranks", std::to_string(size));
            benchmark::Initialize(&argc, argv);
            benchmark::RunSpecifiedBenchmarks();
            benchmark::Shutdown();
            command stop{static_cast<std::int64_t>(kind::stop), 0, 0};
            MPI_Bcast(stop.data(), static_cast<int>(stop.size()), MPI_INT64_T, 0, MPI_COMM_WORLD);
        } else {
            serve();
        }
        current = nullptr;
        MPI_Barrier(MPI_COMM_WORLD);
        world = nullptr;
    }
    return 0;
}
