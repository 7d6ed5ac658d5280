// device_buffer on a real GPU: a round trip through device memory, a kernel in between, and a
// CUDA failure turned into dtfm::cuda_error. Exits 77 (skipped) without a device.
#include <cstdio>
#include <numeric>
#include <vector>

#include "device_present.hpp"
#include "dtfm/config.hpp"
#include "dtfm/cuda/device_buffer.cuh"

namespace {

DTFM_HOST_DEVICE float affine(float x) { return 2.0f * x + 1.0f; }

__global__ void apply_affine(float* data, std::size_t n) {
    const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
    if (i < n) data[i] = affine(data[i]);
}

int failures = 0;
void expect(bool ok, const char* what) {
    if (!ok) {
        std::printf("FAILED: %s\n", what);
        ++failures;
    }
}

}  // namespace

int main() {
    if (!gpu_test::device_present()) return gpu_test::skipped;

    try {
        constexpr std::size_t n = 1 << 20;
        std::vector<float> host(n);
        std::iota(host.begin(), host.end(), 0.0f);
        dtfm::cuda::device_buffer<float> buf(n);
        expect(buf.size_bytes() == n * sizeof(float), "size_bytes");
        buf.copy_from_host(host);
        apply_affine<<<(n + 255) / 256, 256>>>(buf.data(), n);
        dtfm::detail::check_cuda(cudaGetLastError(), "apply_affine");
        std::vector<float> back(n);
        buf.copy_to_host(back);
        dtfm::detail::check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
        bool same = true;
        for (std::size_t i = 0; i < n; ++i) same = same && back[i] == affine(host[i]);
        expect(same, "kernel result equals the host function");

        dtfm::cuda::device_buffer<float> moved(std::move(buf));
        expect(moved.size() == n && buf.size() == 0 && buf.data() == nullptr, "move leaves the source empty");

        bool threw = false;
        try {
            moved.copy_to_host(std::span<float>(back.data(), 10));
        } catch (const dtfm::error&) {
            threw = true;
        }
        expect(threw, "a size mismatch throws dtfm::error");

        threw = false;
        try {
            dtfm::cuda::device_buffer<float> too_big(std::size_t{1} << 60);
        } catch (const dtfm::cuda_error& e) {
            threw = e.code() == cudaErrorMemoryAllocation;
            std::printf("expected failure: %s\n", e.what());
        }
        expect(threw, "an impossible allocation throws cuda_error(cudaErrorMemoryAllocation)");
    } catch (const std::exception& e) {
        std::printf("FAILED: unexpected exception: %s\n", e.what());
        return 1;
    }
    std::printf("%s\n", failures == 0 ? "all GPU checks passed" : "some GPU checks failed");
    return failures == 0 ? 0 : 1;
}
