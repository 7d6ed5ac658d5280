// cuda::sign<Block>: compress::sign on device buffers, payloads byte-identical to the host's. One
// thread per block computes its scale with the host's block_scale (the same double sums in the
// same order, so the same float), one thread per group of 8 values packs their sign bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dtfm/compress/payload.hpp"
#include "dtfm/compress/sign.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/cuda/payload.cuh"
#include "dtfm/spaces.hpp"

namespace dtfm::cuda {

namespace detail {

template <class S>
struct sign_scales {
    const float* x;
    std::size_t n;
    std::byte* payload;
    payload_head head;

    DTFM_HOST_DEVICE void operator()(std::size_t b) const {
        if (b == 0) head.store(payload);
        if (n == 0) return;
        const std::size_t first = b * S::block;
        const std::size_t len = n - first < S::block ? n - first : S::block;
        store_f32(payload + compress::payload_header::size + 4 * b, S::block_scale(x + first, len));
    }
};

template <class S>
struct sign_bits_of_groups {
    const float* x;
    std::size_t n;
    std::byte* bits;

    DTFM_HOST_DEVICE void operator()(std::size_t t) const {
        const std::size_t count = n - 8 * t < 8 ? n - 8 * t : 8;
        bits[t] = static_cast<std::byte>(S::sign_bits(x + 8 * t, count));
    }
};

template <class S>
struct sign_decode_groups {
    const std::byte* payload;
    std::size_t n;
    float* out;

    DTFM_HOST_DEVICE void operator()(std::size_t t) const {
        const std::size_t count = n - 8 * t < 8 ? n - 8 * t : 8;
        const std::byte* scales = payload + compress::payload_header::size;
        const float s = load_f32(scales + 4 * (8 * t / S::block));
        std::uint32_t sb;
        std::memcpy(&sb, &s, 4);
        const std::byte* bits = scales + 4 * S::blocks(n);
        S::signed_scales(static_cast<std::uint32_t>(bits[t]), sb, out + 8 * t, count);
    }
};

}  // namespace detail

template <std::size_t Block = 256>
class sign {
public:
    using host_type = compress::sign<Block>;
    using compressor_concept = compressor_tag;
    using value_type = float;
    using memory_space = cuda_space;

    static constexpr std::size_t block = Block;

    explicit sign(stream_t stream = nullptr) : stream_(stream) {}

    stream_t stream() const { return stream_; }
    // Waits for the work queued on the current stream first (its scratch is reused).
    void set_stream(stream_t stream) { detail::switch_stream(stream_, stream); }

    std::size_t max_payload_bytes(std::size_t n) const {
        return compress::payload_header::size + host_type::body_bytes(n);
    }

    std::size_t encode(std::span<const float> values, std::span<std::byte> payload) {
        const std::size_t n = values.size();
        const std::size_t bytes = max_payload_bytes(n);
        compress::check_capacity(payload, bytes, "cuda::sign");
        const auto head = detail::make_head({compress::kind::sign, host_type::mean_abs_scale,
                                             static_cast<std::uint32_t>(Block), 0, n, host_type::body_bytes(n)});
        detail::for_each_index(stream_, n == 0 ? 1 : host_type::blocks(n),
                               detail::sign_scales<host_type>{values.data(), n, payload.data(), head},
                               "cuda::sign::encode");
        std::byte* bits = payload.data() + compress::payload_header::size + 4 * host_type::blocks(n);
        detail::for_each_index(stream_, (n + 7) / 8, detail::sign_bits_of_groups<host_type>{values.data(), n, bits},
                               "cuda::sign::encode");
        return bytes;
    }

    void decode(std::span<const std::byte> payload, std::span<float> out) {
        const std::size_t n = out.size();
        host_type::check_header(detail::read_header(stream_, payload, compress::kind::sign, n), n);
        detail::for_each_index(stream_, (n + 7) / 8, detail::sign_decode_groups<host_type>{payload.data(), n, out.data()},
                               "cuda::sign::decode");
    }

private:
    stream_t stream_;
};

static_assert(concepts::compressor_for<sign<>, cuda_space>);

}  // namespace dtfm::cuda
