// The host GPT's cost: one training micro-batch (forward + backward) of gpt_config::tiny() on one
// stage, 8 sequences × 64 tokens, OpenBLAS on 1 and on 2 threads; and a forward alone. Counters:
// tokens per second and the GEMM FLOP rate reached; the baseline is one sgemm of the model's
// most common shape ([512 × 240]·[240 × 960]), so flops ÷ the baseline's flops is the share of
// the BLAS's speed the whole step keeps (the rest goes to LayerNorm, GELU, softmax, copies).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <span>
#include <vector>

#include "dtfm/nn/gemm.hpp"
#include "dtfm/nn/gpt_stage.hpp"

namespace {

// Multiply-add FLOPs of one forward: the linear layers, the head, and QKᵀ and P·V over full T×T.
double forward_flops(const dtfm::nn::gpt_config& c, std::size_t sequences) {
    const auto tokens = static_cast<double>(sequences * c.context), C = static_cast<double>(c.d_model);
    const double linear = 2.0 * tokens * (static_cast<double>(c.layers) * 12.0 * C * C + C * static_cast<double>(c.vocab));
    const double attention = static_cast<double>(c.layers) * 4.0 * tokens * static_cast<double>(c.context) * C;
    return linear + attention;
}

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
    state.counters["flops"] = benchmark::Counter(forward_flops(c, B) * (backward ? 3.0 : 1.0),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void sgemm_baseline(benchmark::State& state) {
    dtfm::nn::set_blas_threads(static_cast<int>(state.range(0)));
    const std::size_t m = 512, k = 240, n = 960;
    std::vector<float> a(m * k, 0.5f), b(k * n, 0.25f), c(m * n);
    for (auto _ : state) {
        dtfm::nn::gemm(dtfm::nn::transpose::no, dtfm::nn::transpose::no, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f,
                       c.data(), n);
        benchmark::DoNotOptimize(c.data());
    }
    state.counters["flops"] =
        benchmark::Counter(2.0 * static_cast<double>(m * n * k), benchmark::Counter::kIsIterationInvariantRate);
}

void gpt_tiny_train_microbatch(benchmark::State& state) { run(state, true); }
void gpt_tiny_forward(benchmark::State& state) { run(state, false); }

}  // namespace

BENCHMARK(gpt_tiny_train_microbatch)->ArgName("blas_threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(sgemm_baseline)->ArgName("blas_threads")->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(gpt_tiny_forward)->ArgName("blas_threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
