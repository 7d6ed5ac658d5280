// The host GPT's cost: one training micro-batch (forward + backward) of gpt_config::tiny() on one
// stage, 8 sequences × 64 tokens, OpenBLAS on 1 and on 2 threads; and a forward alone. Tokens per
// second are reported as a counter.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <span>
#include <vector>

#include "dtfm/nn/gpt_stage.hpp"

namespace {

void run(benchmark::State& state, bool backward) {
    dtfm::nn::set_blas_threads(static_cast<int>(state.range(0)));
    const auto c = dtfm::nn::gpt_config::tiny();
    const int B = 8;
    dtfm::nn::gpt_stage s(c, 0, 1, B, 1);
    std::vector<std::int32_t> tokens(static_cast<std::size_t>(B) * c.context), targets(tokens.size());
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        tokens[i] = static_cast<std::int32_t>((i * 31 + 7) % c.vocab);
        targets[i] = static_cast<std::int32_t>((i * 31 + 38) % c.vocab);
    }
    s.feed(0, tokens, targets);
    float loss = 0.0f;
    const float one = 1.0f;
    for (auto _ : state) {
        s.forward(0, {}, std::span<float>(&loss, 1));
        if (backward) s.backward(0, std::span<const float>(&one, 1), {});
        benchmark::DoNotOptimize(loss);
    }
    state.counters["tokens_per_s"] =
        benchmark::Counter(static_cast<double>(tokens.size()), benchmark::Counter::kIsIterationInvariantRate);
    state.counters["parameters"] = static_cast<double>(c.parameter_count());
}

void gpt_tiny_train_microbatch(benchmark::State& state) { run(state, true); }
void gpt_tiny_forward(benchmark::State& state) { run(state, false); }

}  // namespace

BENCHMARK(gpt_tiny_train_microbatch)->ArgName("blas_threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(gpt_tiny_forward)->ArgName("blas_threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
