// memcpy and a read-only sum of float buffers: the baseline every compressor's throughput is divided by.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <vector>

namespace {

// Buffers are filled before timing so first-touch page faults are not measured.
std::vector<float> make_buffer(std::size_t bytes) { return std::vector<float>(bytes / sizeof(float), 1.0f); }

void bench_memcpy(benchmark::State& state) {
    const auto bytes = static_cast<std::size_t>(state.range(0));
    auto src = make_buffer(bytes);
    auto dst = make_buffer(bytes);
    for (auto _ : state) {
        std::memcpy(dst.data(), src.data(), bytes);
        benchmark::DoNotOptimize(dst.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
}

void bench_sum(benchmark::State& state) {
    const auto bytes = static_cast<std::size_t>(state.range(0));
    auto src = make_buffer(bytes);
    for (auto _ : state) {
        benchmark::DoNotOptimize(src.data());
        float total = std::accumulate(src.begin(), src.end(), 0.0f);
        benchmark::DoNotOptimize(total);
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
}

// 4 KiB (L1) to 64 MiB (well past any last-level cache on these machines).
void buffer_sizes(benchmark::internal::Benchmark* b) {
    for (std::int64_t kib : {4, 64, 1024, 16 * 1024, 64 * 1024}) {
        b->Arg(kib * 1024);
    }
}

}  // namespace

BENCHMARK(bench_memcpy)->Name("memcpy")->Apply(buffer_sizes);
BENCHMARK(bench_sum)->Name("sum")->Apply(buffer_sizes);

BENCHMARK_MAIN();
