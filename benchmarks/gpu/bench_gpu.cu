// GPU benchmark of the CUDA compressors: each figure is a ratio to a device-to-device copy of the
// same tensor measured in the same run (cudaMemcpyAsync, fp32 in and out), as every dtfm claim is.
// Bandwidth of an operation = the fp32 bytes of the tensor / its time; ratio = its bandwidth / the
// copy's. Usage: dtfm_bench_gpu [OUT.json] [elements, default 64Mi]. Plain main, no Google
// Benchmark, so it builds with the CUDA toolkit alone (benchmarks/gpu/run.sh).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "dtfm/cuda/cocktail.cuh"
#include "dtfm/cuda/device_buffer.cuh"
#include "dtfm/cuda/error.cuh"
#include "dtfm/cuda/quantize.cuh"
#include "dtfm/cuda/randomk.cuh"
#include "dtfm/cuda/sign.cuh"
#include "dtfm/cuda/topk.cuh"

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

}  // namespace

int main(int argc, char** argv) {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        std::printf("SKIPPED: no CUDA device\n");
        return 77;
    }
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
        std::fprintf(f, "  ]\n}\n");
        std::fclose(f);
        cudaStreamDestroy(stream);
    } catch (const std::exception& e) {
        std::printf("FAILED: %s\n", e.what());
        return 1;
    }
    return 0;
}
