// device_buffer<T>: an owning, move-only array in device memory (cuda_space), with asynchronous
// copies to and from the host on a stream. The buffer every CUDA policy stages its data in.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "dtfm/cuda/error.cuh"
#include "dtfm/spaces.hpp"

namespace dtfm::cuda {

template <class T>
class device_buffer {
    static_assert(std::is_trivially_copyable_v<T>, "device memory holds trivially copyable values only");

public:
    using value_type = T;
    using memory_space = cuda_space;

    device_buffer() = default;
    explicit device_buffer(std::size_t n) : size_(n) {
        if (n > 0) {
            void* p = nullptr;
            dtfm::detail::check_cuda(cudaMalloc(&p, n * sizeof(T)), "cudaMalloc");
            data_ = static_cast<T*>(p);
        }
    }
    device_buffer(device_buffer&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    device_buffer& operator=(device_buffer&& other) noexcept {
        if (this != &other) {
            release();
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }
    device_buffer(const device_buffer&) = delete;
    device_buffer& operator=(const device_buffer&) = delete;
    ~device_buffer() { release(); }

    T* data() noexcept { return data_; }
    const T* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    std::size_t size_bytes() const noexcept { return size_ * sizeof(T); }
    std::span<T> span() noexcept { return {data_, size_}; }

    // Host → device; `host` must stay alive (and, for a truly asynchronous copy, be pinned) until
    // the stream reaches this point.
    void copy_from_host(std::span<const T> host, cudaStream_t stream = nullptr) {
        check_size(host.size(), "copy_from_host");
        dtfm::detail::check_cuda(cudaMemcpyAsync(data_, host.data(), host.size_bytes(), cudaMemcpyHostToDevice, stream),
                           "cudaMemcpyAsync(host to device)");
    }

    void copy_to_host(std::span<T> host, cudaStream_t stream = nullptr) const {
        check_size(host.size(), "copy_to_host");
        dtfm::detail::check_cuda(cudaMemcpyAsync(host.data(), data_, host.size_bytes(), cudaMemcpyDeviceToHost, stream),
                           "cudaMemcpyAsync(device to host)");
    }

private:
    void check_size(std::size_t n, const char* call) const {
        if (n != size_) {
            throw error(std::string("device_buffer::") + call + ": host span has " + std::to_string(n) +
                        " elements, the buffer " + std::to_string(size_));
        }
    }
    void release() noexcept {
        if (data_) cudaFree(data_);
        data_ = nullptr;
        size_ = 0;
    }

    T* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace dtfm::cuda
