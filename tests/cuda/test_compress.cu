// The CUDA compressors on a GPU, byte for byte against the host compressors (compress_checks.hpp);
// then, on a GPU only: each on a non-blocking stream of its own, its input written by a kernel
// still running when encode is queued (nothing but the stream orders them), and at 2^26 + 13
// elements (64-bit index arithmetic, Thrust/CUB at scale). Exits 77 (skipped) without a device.
#include <cstdio>

#include "compress_checks.hpp"
#include "device_present.hpp"
#include "dtfm/cuda/device_buffer.cuh"

namespace {

// Every 64th block waits `cycles` before it copies: the kernel is still running when encode is
// queued and stale values are spread over the whole input, without 2^26 elements' worth of blocks
// each waiting in turn (seconds of device time).
__global__ void slow_copy(const float* from, float* to, std::size_t n, long long cycles) {
    if (blockIdx.x % 64 == 0) {
        const long long start = clock64();
        while (clock64() - start < cycles) {
        }
    }
    const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
    if (i < n) to[i] = from[i];
}

// Host and device encode and decode values; the device's input is written on its stream by a slow
// kernel queued just before encode, and its results are read back on that stream.
template <class Host, class Device>
void on_own_stream(Host host, Device device, std::size_t n, const std::string& what, long long cycles) {
    const std::vector<float> values = checks::test_values(n, 77);
    cudaStream_t s;
    dtfm::detail::check_cuda(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
    device.set_stream(s);
    dtfm::cuda::device_buffer<float> staged(n), x(n), out(n);
    dtfm::cuda::device_buffer<std::byte> payload(device.max_payload_bytes(n));
    staged.copy_from_host(values, s);
    slow_copy<<<static_cast<unsigned>((n + 255) / 256), 256, 0, s>>>(staged.data(), x.data(), n, cycles);
    dtfm::detail::check_cuda(cudaGetLastError(), "slow_copy launch");
    const std::size_t bytes = device.encode(std::span<const float>(x.data(), n), payload.span());
    device.decode(std::span<const std::byte>(payload.data(), bytes), out.span());
    std::vector<std::byte> dp(bytes);
    std::vector<float> dout(n);
    dtfm::detail::check_cuda(cudaMemcpyAsync(dp.data(), payload.data(), bytes, cudaMemcpyDeviceToHost, s), "cudaMemcpyAsync");
    out.copy_to_host(dout, s);
    dtfm::detail::check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize");
    cudaStreamDestroy(s);
    std::vector<std::byte> hp(host.max_payload_bytes(n));
    std::vector<float> hout(n);
    const std::size_t hbytes = host.encode(values, hp);
    hp.resize(hbytes);
    host.decode(hp, hout);
    checks::expect(dp == hp, what + ": payload bytes on a stream of its own");
    checks::expect(checks::same_bits(dout, hout), what + ": decoded values on a stream of its own");
}

int stream_and_scale_checks() {
    const long long cycles = 20'000'000;  // about 10 ms at 2 GHz
    for (const std::size_t n : {std::size_t{1} << 20, (std::size_t{1} << 26) + 13}) {
        const std::string at = " (n = " + std::to_string(n) + ")";
        on_own_stream(dtfm::compress::quantize<4>{}, dtfm::cuda::quantize<4>{}, n, "quantize<4>" + at, cycles);
        on_own_stream(dtfm::compress::sign<>{}, dtfm::cuda::sign<>{}, n, "sign<>" + at, cycles);
        on_own_stream(dtfm::compress::topk<>{}, dtfm::cuda::topk<>{}, n, "topk<>" + at, cycles);
        dtfm::compress::cocktail<> host(5);
        dtfm::cuda::cocktail<> device(5);
        host.set_context(2, 0);
        device.set_context(2, 0);
        on_own_stream(std::move(host), std::move(device), n, "cocktail<>" + at, cycles);
    }
    std::printf("%s (%d failures)\n", checks::failures == 0 ? "stream and scale checks passed" : "stream and scale checks failed",
                checks::failures);
    return checks::failures == 0 ? 0 : 1;
}

}  // namespace

int main() {
    if (!gpu_test::device_present()) return gpu_test::skipped;
    try {
        const int shared = checks::run_all();
        const int own = stream_and_scale_checks();
        return shared != 0 || own != 0 ? 1 : 0;
    } catch (const std::exception& e) {
        std::printf("FAILED: unexpected exception: %s\n", e.what());
        return 1;
    }
}
