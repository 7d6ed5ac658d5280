// cuda::staged<inproc> on a real GPU: two ranks as threads exchange device buffers (one larger than
// inproc's eager limit) produced by a kernel on a compute stream; the receiver's kernel on its
// compute stream reads the data with no host wait. isend returns while the kernel producing its
// data still runs, and a kernel queued after it may overwrite the buffer. Then pinned_copier's ordering against slow
// kernels: a send's copy waits for the kernel producing the data, a receive's copy waits for a
// kernel still reading the buffer it overwrites, and a kernel queued after a receive sees the data
// with no host wait. Exits 77 (skipped) without a device.
#include <atomic>
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

// Each thread first waits about `cycles` clock cycles: a kernel still running when the next
// operation is queued.
__device__ void spin(long long cycles) {
    const long long start = clock64();
    while (clock64() - start < cycles) {
    }
}
__global__ void slow_fill(float* x, std::size_t n, float base, long long cycles) {
    spin(cycles);
    const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
    if (i < n) x[i] = base + static_cast<float>(i);
}
__global__ void slow_copy(const float* from, float* to, std::size_t n, long long cycles) {
    spin(cycles);
    const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
    if (i < n) to[i] = from[i];
}

int expect_values(const std::vector<float>& got, float base, const char* what) {
    for (std::size_t i = 0; i < got.size(); ++i) {
        if (got[i] != base + static_cast<float>(i)) {
            std::printf("FAILED: %s: element %zu = %g, want %g\n", what, i, got[i], base + static_cast<float>(i));
            return 1;
        }
    }
    return 0;
}

int copier_ordering_checks() {
    int failures = 0;
    constexpr std::size_t n = 1 << 20;
    constexpr long long cycles = 50'000'000;  // about 25 ms at 2 GHz
    const unsigned blocks = static_cast<unsigned>((n + 255) / 256);
    cudaStream_t compute;
    dtfm::detail::check_cuda(cudaStreamCreateWithFlags(&compute, cudaStreamNonBlocking), "cudaStreamCreate");
    dtfm::cuda::pinned_copier copier(compute);
    dtfm::cuda::device_buffer<float> dev(n), dev2(n);
    std::byte* pinned = copier.allocate(4 * n);
    auto* pinned_floats = reinterpret_cast<float*>(pinned);

    // Send: the copy to the host waits for the slow kernel producing the data.
    slow_fill<<<blocks, 256, 0, compute>>>(dev.data(), n, 7.0f, cycles);
    copier.to_host(pinned, reinterpret_cast<const std::byte*>(dev.data()), 4 * n).wait();
    failures += expect_values(std::vector<float>(pinned_floats, pinned_floats + n), 7.0f, "send waits for the producer");

    // Receive: the copy into dev waits for the slow kernel still reading dev; add_one, queued after
    // the receive with no host wait, sees the received data.
    slow_fill<<<blocks, 256, 0, compute>>>(dev.data(), n, 1.0f, 0);
    dtfm::detail::check_cuda(cudaStreamSynchronize(compute), "cudaStreamSynchronize");
    for (std::size_t i = 0; i < n; ++i) pinned_floats[i] = 1000.0f + static_cast<float>(i);
    slow_copy<<<blocks, 256, 0, compute>>>(dev.data(), dev2.data(), n, cycles);
    auto received = copier.to_space(reinterpret_cast<std::byte*>(dev.data()), pinned, 4 * n);
    add_one<<<blocks, 256, 0, compute>>>(dev.data(), n);
    std::vector<float> old(n), now(n);
    dev2.copy_to_host(old, compute);
    dev.copy_to_host(now, compute);
    dtfm::detail::check_cuda(cudaStreamSynchronize(compute), "cudaStreamSynchronize");
    received.wait();
    failures += expect_values(old, 1.0f, "a receive waits for the kernel reading its buffer");
    failures += expect_values(now, 1001.0f, "the kernel after a receive sees the data");

    copier.deallocate(pinned, 4 * n);
    cudaStreamDestroy(compute);
    return failures;
}

}  // namespace

int main() {
    if (!gpu_test::device_present()) return gpu_test::skipped;
    std::atomic<int> failures{0};  // both ranks count
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
            {
                // The send's copy waits for slow_fill, so the request cannot be done right after
                // isend; fill, queued after isend, overwrites the buffer only after the copy.
                constexpr std::size_t n = 1 << 20;
                constexpr long long cycles = 50'000'000;  // about 25 ms at 2 GHz
                const unsigned blocks = static_cast<unsigned>((n + 255) / 256);
                dtfm::cuda::device_buffer<float> buf(n);
                if (t.rank() == 0) {
                    slow_fill<<<blocks, 256, 0, compute>>>(buf.data(), n, 5.0f, cycles);
                    auto send = t.isend(1, tag, std::as_bytes(std::span<float>(buf.data(), n)));
                    if (send.test()) {
                        std::printf("FAILED: a send completed while its data was still being produced\n");
                        ++failures;
                    }
                    fill<<<blocks, 256, 0, compute>>>(buf.data(), n, -1.0f);
                    send.wait();
                } else {
                    t.irecv(0, tag, std::as_writable_bytes(std::span<float>(buf.data(), n))).wait();
                    std::vector<float> host(n);
                    buf.copy_to_host(host, compute);
                    dtfm::detail::check_cuda(cudaStreamSynchronize(compute), "cudaStreamSynchronize");
                    failures += expect_values(host, 5.0f, "a send carries its data as of isend, in stream order");
                }
            }
            if (t.staging_blocks() > 3) {
                std::printf("FAILED: %zu staging blocks for 3 sizes\n", t.staging_blocks());
                ++failures;
            }
            cudaStreamDestroy(compute);
        });
        failures += copier_ordering_checks();
    } catch (const std::exception& e) {
        std::printf("FAILED: unexpected exception: %s\n", e.what());
        return 1;
    }
    std::printf("%s\n", failures == 0 ? "all staging checks passed" : "some staging checks failed");
    return failures == 0 ? 0 : 1;
}
