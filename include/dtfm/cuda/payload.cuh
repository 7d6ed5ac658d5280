// What the CUDA compressors (and the CUDA GPT stage) share: a Thrust execution policy on a stream,
// the launch every kernel goes through, dense fills and copies, the header of a payload
// in device memory written by a kernel (so encode never waits) and read back and validated by the
// host decoders' own checks, little-endian stores at any address, and CUDA/Thrust failures as
// dtfm::cuda_error. Written on Thrust alone, so the algorithms also build with Thrust's CPP or OMP
// device system and g++ (THRUST_DEVICE_SYSTEM), where "device memory" is host memory: that is how
// they are tested without a GPU.
#pragma once

#include <cuda_runtime_api.h>
#include <thrust/copy.h>
#include <thrust/device_ptr.h>
#include <thrust/execution_policy.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/system_error.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dtfm/compress/payload.hpp"
#include "dtfm/config.hpp"
#include "dtfm/cuda/device_buffer.cuh"
#include "dtfm/cuda/error.cuh"
#include "dtfm/error.hpp"
#include "dtfm/spaces.hpp"
#include "dtfm/wire/endian.hpp"

namespace dtfm::cuda {

// The stream a CUDA compressor runs on (nullptr: the default stream). Work is queued on it in
// order; encode returns before its kernels finish, decode waits only to read the payload header
// (and where a check needs the data: top-k indices, a cocktail bitmap).
using stream_t = cudaStream_t;

}  // namespace dtfm::cuda

namespace dtfm::cuda::detail {

#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
inline constexpr bool on_gpu = true;
inline auto policy(stream_t stream) { return thrust::cuda::par_nosync.on(stream); }
#else
inline constexpr bool on_gpu = false;
inline auto policy(stream_t) { return thrust::device; }
#endif

// Temporary storage for Thrust's algorithms (scan, select and sort scratch), kept between calls: after
// the first call of each size nothing is allocated (a cudaFree would also wait for the device).
// Blocks are handed out whole, the smallest free one that fits; all are freed with the allocator.
class temp_allocator {
public:
    using value_type = char;

    temp_allocator() = default;
    temp_allocator(const temp_allocator&) = delete;
    temp_allocator& operator=(const temp_allocator&) = delete;
    // Movable, so the compressors holding one are (cuda::delta and error_feedback take theirs by value).
    temp_allocator(temp_allocator&& o) noexcept : blocks_(std::exchange(o.blocks_, {})) {}
    temp_allocator& operator=(temp_allocator&& o) noexcept {
        if (this != &o) {
            for (auto& b : blocks_) free_block(b.data);
            blocks_ = std::exchange(o.blocks_, {});
        }
        return *this;
    }
    ~temp_allocator() {
        for (auto& b : blocks_) free_block(b.data);
    }

    char* allocate(std::ptrdiff_t n) {
        const auto size = static_cast<std::size_t>(n > 0 ? n : 1);
        block* best = nullptr;
        for (auto& b : blocks_) {
            if (!b.in_use && b.size >= size && (!best || b.size < best->size)) best = &b;
        }
        if (!best) {
            // Replace the largest free block, if any, by one with headroom: inputs of one size
            // need slightly different scratch (the candidate count varies), and the set stays small.
            block* largest = nullptr;
            for (auto& b : blocks_) {
                if (!b.in_use && (!largest || b.size > largest->size)) largest = &b;
            }
            const std::size_t grown = size + size / 4;
            if (largest) {
                free_block(largest->data);
                blocks_.erase(blocks_.begin() + (largest - blocks_.data()));
            }
            blocks_.push_back({new_block(grown), grown, false});
            best = &blocks_.back();
        }
        best->in_use = true;
        return best->data;
    }

    void deallocate(char* p, std::size_t) noexcept {
        for (auto& b : blocks_) {
            if (b.data == p) b.in_use = false;
        }
    }

    std::size_t blocks() const noexcept { return blocks_.size(); }

private:
    struct block {
        char* data;
        std::size_t size;
        bool in_use;
    };

    static char* new_block(std::size_t size) {
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
        void* p = nullptr;
        dtfm::detail::check_cuda(cudaMalloc(&p, size), "cudaMalloc(Thrust temporary storage)");
        return static_cast<char*>(p);
#else
        return new char[size];
#endif
    }
    static void free_block(char* p) noexcept {
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
        cudaFree(p);
#else
        delete[] p;
#endif
    }

    std::vector<block> blocks_;
};

#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
inline auto policy(stream_t stream, temp_allocator& temp) { return thrust::cuda::par_nosync(temp).on(stream); }
#else
inline auto policy(stream_t, temp_allocator& temp) { return thrust::device(temp); }
#endif

// Thrust reports CUDA failures as thrust::system_error; dtfm callers catch dtfm::error.
template <class F>
decltype(auto) guarded(const char* what, F&& f) {
    try {
        return f();
    } catch (const thrust::system_error& e) {
        throw error(std::string(what) + ": " + e.what());
    }
}

// Random-k, top-k and CocktailSGD address elements with 32-bit positions.
inline void check_32bit_positions(std::size_t n, const char* call) {
    if (n > std::numeric_limits<std::uint32_t>::max())
        throw error(std::string(call) + ": " + std::to_string(n) + " elements, more than its 32-bit positions address (2^32 - 1)");
}

// Moves a compressor's work to another stream. Work queued on the current one may still use the
// compressor's scratch and temporary blocks, which the next call (on the new stream) reuses: wait
// for it first.
inline void switch_stream(stream_t& current, stream_t next) {
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
    if (current != next) dtfm::detail::check_cuda(cudaStreamSynchronize(current), "cudaStreamSynchronize");
#endif
    current = next;
}

// f(i) for i in [0, count) on the stream: the launch every kernel of these headers goes through.
template <class F>
void for_each_index(stream_t stream, std::size_t count, F f, const char* what) {
    if (count == 0) return;
    guarded(what, [&] {
        thrust::for_each(policy(stream), thrust::counting_iterator<std::size_t>(0),
                         thrust::counting_iterator<std::size_t>(count), f);
        return 0;
    });
}

// Dense fills and copies of floats on the stream.
struct fill_floats {
    float* out;
    float value;
    DTFM_HOST_DEVICE void operator()(std::size_t i) const { out[i] = value; }
};
struct copy_floats {
    const float* from;
    float* to;
    DTFM_HOST_DEVICE void operator()(std::size_t i) const { to[i] = from[i]; }
};
inline void fill(stream_t stream, float* out, std::size_t count, float value, const char* what) {
    for_each_index(stream, count, fill_floats{out, value}, what);
}
inline void copy(stream_t stream, const float* from, std::size_t count, float* to, const char* what) {
    for_each_index(stream, count, copy_floats{from, to}, what);
}

// Little-endian stores and loads at any byte address (payload fields need not be aligned: a
// cocktail's inner payload starts anywhere). Devices and dtfm hosts are little-endian.
DTFM_HOST_DEVICE void store_u32(std::byte* to, std::uint32_t v) { std::memcpy(to, &v, 4); }
DTFM_HOST_DEVICE void store_f32(std::byte* to, float v) { std::memcpy(to, &v, 4); }
DTFM_HOST_DEVICE std::uint32_t load_u32(const std::byte* from) {
    std::uint32_t v;
    std::memcpy(&v, from, 4);
    return v;
}
DTFM_HOST_DEVICE float load_f32(const std::byte* from) {
    float v;
    std::memcpy(&v, from, 4);
    return v;
}

// The first bytes of a payload (its header and any context fields after it), built on the host and
// passed to a kernel by value: the thread of index 0 of the encode's first launch stores them.
struct payload_head {
    static constexpr std::size_t capacity = 64;
    std::byte bytes[capacity] = {};
    std::size_t size = 0;

    DTFM_HOST_DEVICE void store(std::byte* to) const {
        for (std::size_t i = 0; i < size; ++i) to[i] = bytes[i];
    }
};

inline payload_head make_head(const compress::payload_header& h, std::span<const std::uint64_t> context = {}) {
    payload_head head;
    h.write(std::span<std::byte>(head.bytes, compress::payload_header::size));
    head.size = compress::payload_header::size;
    for (std::uint64_t v : context) {
        wire::store_le<std::uint64_t>(head.bytes + head.size, v);
        head.size += 8;
    }
    return head;
}

// Stores the head alone (for an encode with no other launch: an empty tensor).
struct store_head {
    payload_head head;
    std::byte* payload;
    DTFM_HOST_DEVICE void operator()(std::size_t) const { head.store(payload); }
};

inline void write_head(stream_t stream, const payload_head& head, std::byte* payload) {
    for_each_index(stream, 1, store_head{head, payload}, "write payload header");
}

// Device scratch that only grows, uninitialised (no fill kernel on another stream): cudaMalloc'd
// on a GPU, a host vector on Thrust's CPP and OMP systems.
template <class T>
class scratch {
public:
    void grow(std::size_t n) {
        if (buffer_.size() < n) {
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
            buffer_ = device_buffer<T>();  // the old one is freed first
            buffer_ = device_buffer<T>(n);
#else
            buffer_.resize(n);
#endif
        }
    }
    T* data() { return buffer_.data(); }
    const T* data() const { return buffer_.data(); }
    std::size_t size() const { return buffer_.size(); }

private:
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
    device_buffer<T> buffer_;
#else
    std::vector<T> buffer_;
#endif
};

// One value from device memory (waits for the stream).
template <class T>
T read_value(stream_t stream, const T* p) {
    T v{};
    if constexpr (on_gpu) {
        dtfm::detail::check_cuda(cudaMemcpyAsync(&v, p, sizeof(T), cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync");
        dtfm::detail::check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    } else {
        v = *p;
    }
    return v;
}

// Copies the first min(size, bytes) bytes of a device payload to the host (waits for the stream).
template <std::size_t Bytes>
std::array<std::byte, Bytes> read_front(stream_t stream, std::span<const std::byte> payload) {
    std::array<std::byte, Bytes> front{};
    const std::size_t count = payload.size() < Bytes ? payload.size() : Bytes;
    guarded("read payload header", [&] {
        if constexpr (on_gpu) {
            dtfm::detail::check_cuda(
                cudaMemcpyAsync(front.data(), payload.data(), count, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync");
            dtfm::detail::check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
        } else {
            thrust::copy(thrust::device_pointer_cast(payload.data()), thrust::device_pointer_cast(payload.data()) + count,
                         front.data());
        }
        return 0;
    });
    return front;
}

// The header of a device payload, checked as the host decoders check theirs.
inline compress::payload_header read_header(stream_t stream, std::span<const std::byte> payload, compress::kind kind,
                                            std::size_t out_count) {
    const auto front = read_front<compress::payload_header::size>(stream, payload);
    const std::size_t have = payload.size() < front.size() ? payload.size() : front.size();
    return compress::payload_header::read(std::span<const std::byte>(front.data(), have), payload.size(), kind,
                                          out_count);
}

}  // namespace dtfm::cuda::detail
