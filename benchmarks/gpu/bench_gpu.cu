// GPU benchmark of the CUDA compressors: each figure is a ratio to a device-to-device copy of the
// same tensor measured in the same run (cudaMemcpyAsync, fp32 in and out), as every dtfm claim is.
// Bandwidth of an operation = the fp32 bytes of the tensor / its time; ratio = its bandwidth / the
// copy's. Then one training step of the tiny GPT (nn::gpt_config::tiny(), one stage, a micro-batch
// of 8 × 64 tokens: zero the gradients, forward, backward, AdamW) on the device, and, when built
// with DTFM_BENCH_HOST_GPT (a CBLAS linked), the same step on the host in the same run (OpenBLAS
// with its default threads: every core of the machine); the ratio is host time / device time.
// Usage: dtfm_bench_gpu [OUT.json] [elements, default 64Mi]. Plain main, no Google Benchmark, so it
// builds with the CUDA toolkit alone (benchmarks/gpu/run.sh).
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "device_present.hpp"
#include "dtfm/cuda/cocktail.cuh"
#include "dtfm/cuda/device_buffer.cuh"
#include "dtfm/cuda/adamw.cuh"
#include "dtfm/cuda/error.cuh"
#include "dtfm/cuda/gpt_stage.cuh"
#include "dtfm/cuda/quantize.cuh"
#include "dtfm/cuda/randomk.cuh"
#include "dtfm/cuda/sign.cuh"
#include "dtfm/cuda/topk.cuh"
#if defined(DTFM_BENCH_HOST_GPT)
#include "dtfm/nn/gpt_stage.hpp"
#include "dtfm/optim/adamw.hpp"
#endif

namespace {

using dtfm::detail::check_cuda;

// Median milliseconds of `reps` runs of f on the stream, after two warm-up runs.
double median_ms(cudaStream_t stream, int reps, const std::function<void()>& f) {
    cudaEvent_t start;
    cudaEvent_t stop;
    check_cuda(cudaEventCreate(&start), "cudaEventCreate");
    check_cuda(cudaEventCreate(&stop), "cudaEventCreate");
    for (int i = 0; i < 2; ++i) f();
    check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    std::vector<double> ms;
    for (int i = 0; i < reps; ++i) {
        check_cuda(cudaEventRecord(start, stream), "cudaEventRecord");
        f();
        check_cuda(cudaEventRecord(stop, stream), "cudaEventRecord");
        check_cuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
        float t = 0;
        check_cuda(cudaEventElapsedTime(&t, start, stop), "cudaEventElapsedTime");
        ms.push_back(t);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

struct result {
    std::string name;
    double ms;
};

// A micro-batch of the tiny GPT: a deterministic pattern over the vocabulary, targets the next id.
struct gpt_batch {
    std::vector<std::int32_t> tokens, targets;
    explicit gpt_batch(const dtfm::nn::gpt_config& c, int micro_batch) {
        const std::size_t n = static_cast<std::size_t>(micro_batch) * c.context;
        for (std::size_t i = 0; i <= n; ++i) tokens.push_back(static_cast<std::int32_t>((i * 7 + i * i / 3) % c.vocab));
        targets.assign(tokens.begin() + 1, tokens.end());
        tokens.pop_back();
    }
};

// One training step of a whole-model stage S with optimizer O; the loss (and the gradient fed to
// backward) live in L, a buffer of one float in the stage's memory.
template <class S, class O, class L>
void gpt_step(S& s, O& opt, const gpt_batch& b, L& loss, L& one) {
    s.zero_gradients();
    s.feed(0, b.tokens, b.targets);
    s.forward(0, {}, std::span<float>(loss.data(), 1));
    s.backward(0, std::span<const float>(one.data(), 1), {});
    opt.step(s.parameters(), s.gradients());
}

struct gpt_result {
    double device_ms = 0, host_ms = 0;  // host_ms 0: not measured
};

gpt_result bench_gpt(cudaStream_t stream) {
    const dtfm::nn::gpt_config c = dtfm::nn::gpt_config::tiny();
    const int micro_batch = 8;
    const gpt_batch b(c, micro_batch);
    gpt_result r;
    dtfm::cuda::gpt_stage dev(c, 0, 1, micro_batch, 1, stream);
    dtfm::cuda::adamw dev_opt({}, stream);
    dtfm::cuda::device_buffer<float> loss(1), one(1);
    const float unit = 1.0f;
    one.copy_from_host(std::span<const float>(&unit, 1), stream);
    r.device_ms = median_ms(stream, 20, [&] { gpt_step(dev, dev_opt, b, loss, one); });
#if defined(DTFM_BENCH_HOST_GPT)
    dtfm::nn::gpt_stage host(c, 0, 1, micro_batch, 1);
    dtfm::optim::adamw host_opt;
    std::vector<float> host_loss(1), host_one(1, 1.0f);
    gpt_step(host, host_opt, b, host_loss, host_one);  // warm-up
    std::vector<double> ms;
    for (int i = 0; i < 5; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        gpt_step(host, host_opt, b, host_loss, host_one);
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    r.host_ms = ms[ms.size() / 2];
#endif
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    if (!gpu_test::device_present()) return gpu_test::skipped;
    const std::string out_path = argc > 1 ? argv[1] : "gpu-bench.json";
    const std::size_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : std::size_t{64} << 20;
    cudaDeviceProp prop{};
    check_cuda(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    std::printf("device: %s, %zu elements\n", prop.name, n);

    try {
        cudaStream_t stream;
        check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
        std::vector<float> host(n);
        std::mt19937 rng(1);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        for (auto& v : host) v = normal(rng);
        dtfm::cuda::device_buffer<float> x(n);
        dtfm::cuda::device_buffer<float> y(n);
        x.copy_from_host(host, stream);

        const int reps = 10;
        std::vector<result> results;
        const double copy_ms = median_ms(stream, reps, [&] {
            check_cuda(cudaMemcpyAsync(y.data(), x.data(), 4 * n, cudaMemcpyDeviceToDevice, stream), "copy");
        });
        results.push_back({"copy_d2d", copy_ms});

        auto codec = [&](auto compressor, const std::string& name, int r) {
            compressor.set_stream(stream);
            dtfm::cuda::device_buffer<std::byte> payload(compressor.max_payload_bytes(n));
            std::size_t bytes = 0;
            results.push_back({name + "_encode", median_ms(stream, r, [&] {
                                   bytes = compressor.encode(std::span<const float>(x.data(), n), payload.span());
                               })});
            std::span<const std::byte> p(payload.data(), bytes);
            results.push_back(
                {name + "_decode", median_ms(stream, r, [&] { compressor.decode(p, y.span()); })});
        };
        codec(dtfm::cuda::quantize<8>{}, "quantize8", reps);
        codec(dtfm::cuda::quantize<4>{}, "quantize4", reps);
        codec(dtfm::cuda::quantize<4, dtfm::compress::absmax, dtfm::compress::stochastic>{}, "quantize4_stochastic",
              reps);
        codec(dtfm::cuda::sign<>{}, "sign", reps);
        codec(dtfm::cuda::randomk<>{}, "randomk1pct", reps);
        codec(dtfm::cuda::topk<>{}, "topk1pct", reps);
        codec(dtfm::cuda::cocktail<>{}, "cocktail", reps);

        const gpt_result gpt = bench_gpt(stream);
        std::printf("tiny GPT step: device %.3f ms", gpt.device_ms);
        if (gpt.host_ms > 0)
            std::printf(", host %.1f ms: %.1f x faster on the device\n", gpt.host_ms, gpt.host_ms / gpt.device_ms);
        else
            std::printf(" (host step not measured: built without a CBLAS)\n");

        FILE* f = std::fopen(out_path.c_str(), "w");
        if (!f) throw dtfm::error("cannot write " + out_path);
        std::fprintf(f, "{\n  \"device\": \"%s\",\n  \"elements\": %zu,\n  \"repetitions\": %d,\n  \"results\": [\n",
                     prop.name, n, reps);
        for (std::size_t i = 0; i < results.size(); ++i) {
            const double gbs = 4.0 * static_cast<double>(n) / (results[i].ms * 1e6);
            const double ratio = copy_ms / results[i].ms;
            std::printf("%-28s %9.3f ms %9.1f GB/s  %.3f x copy\n", results[i].name.c_str(), results[i].ms, gbs, ratio);
            std::fprintf(f, "    {\"name\": \"%s\", \"median_ms\": %.4f, \"fp32_GBps\": %.2f, \"ratio_to_copy\": %.4f}%s\n",
                         results[i].name.c_str(), results[i].ms, gbs, ratio, i + 1 < results.size() ? "," : "");
        }
        std::fprintf(f, "  ],\n  \"tiny_gpt_step\": {\"micro_batch\": 8, \"device_median_ms\": %.4f, \"host_median_ms\": %s, "
                        "\"speedup\": %s}\n}\n",
                     gpt.device_ms, gpt.host_ms > 0 ? std::to_string(gpt.host_ms).c_str() : "null",
                     gpt.host_ms > 0 ? std::to_string(gpt.host_ms / gpt.device_ms).c_str() : "null");
        std::fclose(f);
        cudaStreamDestroy(stream);
    } catch (const std::exception& e) {
        std::printf("FAILED: %s\n", e.what());
        return 1;
    }
    return 0;
}
