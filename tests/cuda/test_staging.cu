// cuda::staged<inproc> on a real GPU: two ranks as threads exchange device buffers (one larger than
// inproc's eager limit) produced by a kernel on a compute stream; the receiver's kernel on its
// compute stream reads the data with no host wait. Exits 77 (skipped) without a device.
#include <cstdio>
#include <thread>
#include <vector>

#include "device_present.hpp"
#include "dtfm/cuda/device_buffer.cuh"
#include "dtfm/cuda/staging.cuh"
#include "dtfm/transport/inproc.hpp"

namespace {

__global__ void fill(float* x, std::size_t n, float base) {
    const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
    if (i < n) x[i] = base + static_cast<float>(i);
}

__global__ void add_one(float* x, std::size_t n) {
    const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
    if (i < n) x[i] += 1.0f;
}

}  // namespace

int main() {
    if (!gpu_test::device_present()) return gpu_test::skipped;
    int failures = 0;
    try {
        const std::size_t sizes[] = {1, 1000, 1 << 20};
        dtfm::transport::run_inproc(2, [&](dtfm::transport::inproc& world) {
            cudaStream_t compute;
            dtfm::detail::check_cuda(cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking), "cudaStreamCreate");
            dtfm::cuda::staged<dtfm::transport::inproc> t(world, dtfm::cuda::pinned_copier(compute));
            const dtfm::message_tag tag{dtfm::channel::pipeline, 3};
            for (int round = 0; round < 3; ++round) {
                for (std::size_t n : sizes) {
                    dtfm::cuda::device_buffer<float> buf(n);
                    const unsigned blocks = static_cast<unsigned>((n + 255) / 256);
                    if (t.rank() == 0) {
                        fill<<<blocks, 256, 0, compute>>>(buf.data(), n, static_cast<float>(round));
                        t.isend(1, tag, std::as_bytes(std::span<float>(buf.data(), n))).wait();
                    } else {
                        auto r = t.irecv(0, tag, std::as_writable_bytes(std::span<float>(buf.data(), n)));
                        if (r.wait() != 4 * n) ++failures;
                        add_one<<<blocks, 256, 0, compute>>>(buf.data(), n);
                        std::vector<float> host(n);
                        buf.copy_to_host(host, compute);
                        dtfm::detail::check_cuda(cudaStreamSynchronize(compute), "cudaStreamSynchronize");
                        for (std::size_t i = 0; i < n; ++i) {
                            if (host[i] != static_cast<float>(round) + static_cast<float>(i) + 1.0f) {
                                std::printf("FAILED: n=%zu round %d element %zu = %g\n", n, round, i, host[i]);
                                ++failures;
                                break;
                            }
                        }
                    }
                }
            }
            if (t.staging_blocks() > 3) {
                std::printf("FAILED: %zu staging blocks for 3 sizes\n", t.staging_blocks());
                ++failures;
            }
            cudaStreamDestroy(compute);
        });
    } catch (const std::exception& e) {
        std::printf("FAILED: unexpected exception: %s\n", e.what());
        return 1;
    }
    std::printf("%s\n", failures == 0 ? "all staging checks passed" : "some staging checks failed");
    return failures == 0 ? 0 : 1;
}
