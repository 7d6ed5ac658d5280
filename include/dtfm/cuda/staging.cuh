// cuda::staged<T>: a transport for device buffers over a host transport T (MPI that is not
// CUDA-aware, inproc, throttled<…>): transport::staged with pinned host staging blocks and copies on
// a stream of their own. A send's copy starts after the work already queued on the compute stream
// (which produced the bytes), and isend returns without waiting for it: a thread of the transport
// waits for the copy (sleeping, not spinning) and then hands the block to the host transport, while
// the host goes on queueing work. With transport::mpi that thread calls MPI, so MPI must provide
// MPI_THREAD_MULTIPLE (mpi_environment's default). The compute stream waits
// for that copy, so kernels queued after isend may overwrite the sent buffer. A receive's copy
// also starts after the compute stream's queued work (which may still be reading the buffer it
// overwrites), and the compute stream waits for that copy, so later kernels there see the data
// without the host waiting.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <memory>
#include <utility>

#include "dtfm/cuda/error.cuh"
#include "dtfm/spaces.hpp"
#include "dtfm/transport/staged.hpp"

namespace dtfm::cuda {

class pinned_copier {
public:
    using memory_space = cuda_space;

    // Completion of one copy: an event recorded on the copy stream after it.
    class fence {
    public:
        // blocking: wait() sleeps instead of spinning (the poster thread waits on copies).
        explicit fence(cudaStream_t stream, bool blocking = false) {
            const unsigned flags = cudaEventDisableTiming | (blocking ? cudaEventBlockingSync : 0u);
            dtfm::detail::check_cuda(cudaEventCreateWithFlags(&event_, flags), "cudaEventCreate");
            const cudaError_t rc = cudaEventRecord(event_, stream);
            if (rc != cudaSuccess) {
                cudaEventDestroy(event_);
                dtfm::detail::check_cuda(rc, "cudaEventRecord");
            }
        }
        fence(fence&& o) noexcept : event_(std::exchange(o.event_, nullptr)) {}
        fence& operator=(fence&& o) noexcept {
            if (this != &o) {
                if (event_) cudaEventDestroy(event_);
                event_ = std::exchange(o.event_, nullptr);
            }
            return *this;
        }
        fence(const fence&) = delete;
        fence& operator=(const fence&) = delete;
        ~fence() {
            if (event_) cudaEventDestroy(event_);
        }

        bool ready() {
            const cudaError_t rc = cudaEventQuery(event_);
            if (rc == cudaErrorNotReady) return false;
            dtfm::detail::check_cuda(rc, "cudaEventQuery");
            return true;
        }
        void wait() { dtfm::detail::check_cuda(cudaEventSynchronize(event_), "cudaEventSynchronize"); }
        cudaEvent_t event() const noexcept { return event_; }

    private:
        cudaEvent_t event_ = nullptr;
    };

    // compute: the stream that produces what is sent and consumes what is received (nullptr: the
    // default stream). The copier creates and owns its copy stream.
    // The copier works on the device current when it is made: make it where the compute
    // stream's device is current.
    explicit pinned_copier(cudaStream_t compute = nullptr)
        : device_(current_device()), compute_(compute), copy_(new_stream(), destroy_stream) {}

    // The transport's poster thread calls this before it waits on a copy: without it, its first
    // CUDA call would make a context on device 0 for every rank of a multi-GPU node. It cannot
    // fail for a device the copier was made on; were it to, the poster would wait from its
    // default device (an event wait works across devices) at the cost of that context.
    void bind_thread() noexcept { cudaSetDevice(device_); }

    cudaStream_t compute_stream() const noexcept { return compute_; }
    cudaStream_t copy_stream() const noexcept { return copy_.get(); }
    void set_compute_stream(cudaStream_t s) noexcept { compute_ = s; }

    std::byte* allocate(std::size_t n) {
        void* p = nullptr;
        dtfm::detail::check_cuda(cudaMallocHost(&p, n), "cudaMallocHost");
        return static_cast<std::byte*>(p);
    }
    void deallocate(std::byte* p, std::size_t) noexcept { cudaFreeHost(p); }

    // A send's copy: it starts after the work queued on the compute stream, which produced the
    // bytes; kernels queued there later may overwrite the sent buffer.
    fence to_host(std::byte* host, const std::byte* device, std::size_t n) {
        return copy(host, device, n, cudaMemcpyDeviceToHost, "cudaMemcpyAsync(device to host)");
    }

    // A receive's copy: kernels already queued on the compute stream may still read (or write)
    // the buffer it overwrites, e.g. the decode of the previous message received into it; kernels
    // queued there later see the data.
    fence to_space(std::byte* device, const std::byte* host, std::size_t n) {
        return copy(device, host, n, cudaMemcpyHostToDevice, "cudaMemcpyAsync(host to device)");
    }

private:
    // Queues the copy on the copy stream between the compute stream's queued work and its later
    // work, and returns the copy's fence.
    fence copy(void* to, const void* from, std::size_t n, cudaMemcpyKind kind, const char* what) {
        fence queued(compute_);
        dtfm::detail::check_cuda(cudaStreamWaitEvent(copy_.get(), queued.event(), 0), "cudaStreamWaitEvent");
        dtfm::detail::check_cuda(cudaMemcpyAsync(to, from, n, kind, copy_.get()), what);
        try {
            fence copied(copy_.get(), true);
            dtfm::detail::check_cuda(cudaStreamWaitEvent(compute_, copied.event(), 0), "cudaStreamWaitEvent");
            return copied;
        } catch (...) {
            // The copy was queued and still runs: wait for it before the error leaves, so the
            // caller may reuse the staging block.
            cudaStreamSynchronize(copy_.get());
            throw;
        }
    }

    static int current_device() {
        int d = 0;
        dtfm::detail::check_cuda(cudaGetDevice(&d), "cudaGetDevice");
        return d;
    }

    static cudaStream_t new_stream() {
        cudaStream_t s = nullptr;
        dtfm::detail::check_cuda(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
        return s;
    }
    static void destroy_stream(cudaStream_t s) noexcept { cudaStreamDestroy(s); }

    int device_;
    cudaStream_t compute_;
    std::unique_ptr<CUstream_st, void (*)(cudaStream_t)> copy_;
};

static_assert(transport::staging_copier<pinned_copier>);

// A transport for device buffers over host transport T.
template <concepts::transport T>
using staged = transport::staged<T, pinned_copier>;

}  // namespace dtfm::cuda
