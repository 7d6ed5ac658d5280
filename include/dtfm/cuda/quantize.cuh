// cuda::quantize<Bits, Scale, Rounding, Block>: compress::quantize on device buffers, payloads
// byte-identical to the host's (the same seed and sequence of encodes give the same bytes), so
// either side decodes the other's. One thread measures each block (Scale::measure), then one thread
// per group of 8 codes quantizes and packs them with the host's own group math
// (compress::quantize::encode_group / decode_group).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dtfm/compress/payload.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/cuda/payload.cuh"
#include "dtfm/spaces.hpp"

namespace dtfm::cuda {

namespace detail {

// Thread b: block b's scale fields into the payload; thread 0 also stores the header.
template <class Q>
struct quantize_measure {
    const float* x;
    std::size_t n;
    std::byte* payload;
    payload_head head;

    DTFM_HOST_DEVICE void operator()(std::size_t b) const {
        if (b == 0) head.store(payload);
        if (n == 0) return;
        const std::size_t first = b * Q::block;
        const std::size_t len = n - first < Q::block ? n - first : Q::block;
        float f[Q::scale_fields];
        Q::scale_type::measure(x + first, len, f);
        std::byte* to = payload + compress::payload_header::size + Q::block_scale_bytes * b;
        for (std::size_t k = 0; k < Q::scale_fields; ++k) store_f32(to + 4 * k, f[k]);
    }
};

// The grid of block b from the scale fields already in the payload.
template <class Q>
DTFM_HOST_DEVICE compress::quant_grid grid_of_block(const std::byte* payload, std::size_t b) {
    float f[Q::scale_fields];
    const std::byte* from = payload + compress::payload_header::size + Q::block_scale_bytes * b;
    for (std::size_t k = 0; k < Q::scale_fields; ++k) f[k] = load_f32(from + 4 * k);
    return Q::scale_type::template grid<Q::bits>(f);
}

// Thread t: group t of the tensor (groups never straddle blocks: Block is a multiple of 8).
template <class Q>
struct quantize_encode_groups {
    const float* x;
    std::size_t n;
    std::byte* payload;
    std::uint64_t seed;
    std::uint64_t call;

    DTFM_HOST_DEVICE void operator()(std::size_t t) const {
        constexpr std::size_t per_block = Q::block / 8;
        const std::size_t b = t / per_block;
        const std::size_t first = b * Q::block;
        const std::size_t len = n - first < Q::block ? n - first : Q::block;
        std::byte* codes = payload + compress::payload_header::size + Q::blocks(n) * Q::block_scale_bytes;
        Q::encode_group(x + first, len, grid_of_block<Q>(payload, b), Q::block_key(seed, call, b), t % per_block,
                        codes + b * (per_block * Q::bits));
    }
};

template <class Q>
struct quantize_decode_groups {
    const std::byte* payload;
    std::size_t n;
    float* out;

    DTFM_HOST_DEVICE void operator()(std::size_t t) const {
        constexpr std::size_t per_block = Q::block / 8;
        const std::size_t b = t / per_block;
        const std::size_t first = b * Q::block;
        const std::size_t len = n - first < Q::block ? n - first : Q::block;
        const std::byte* codes = payload + compress::payload_header::size + Q::blocks(n) * Q::block_scale_bytes;
        Q::decode_group(codes + b * (per_block * Q::bits), len, grid_of_block<Q>(payload, b), t % per_block,
                        out + first);
    }
};

}  // namespace detail

template <int Bits, class Scale = compress::absmax, class Rounding = compress::nearest, std::size_t Block = 256>
class quantize {
public:
    using host_type = compress::quantize<Bits, Scale, Rounding, Block>;
    using compressor_concept = compressor_tag;
    using value_type = float;
    using memory_space = cuda_space;
    using scale_type = Scale;
    using rounding_type = Rounding;

    static constexpr int bits = Bits;
    static constexpr std::size_t block = Block;

    // The seed picks stochastic rounding's random numbers, as host_type's does.
    explicit quantize(std::uint64_t seed = 0, stream_t stream = nullptr) : seed_(seed), stream_(stream) {}

    std::uint64_t seed() const { return seed_; }
    std::uint64_t calls() const { return calls_; }
    stream_t stream() const { return stream_; }
    // Waits for the work queued on the current stream first (its scratch is reused).
    void set_stream(stream_t stream) { detail::switch_stream(stream_, stream); }

    static constexpr std::size_t blocks(std::size_t n) { return host_type::blocks(n); }
    static constexpr std::size_t body_bytes(std::size_t n) { return host_type::body_bytes(n); }
    std::size_t max_payload_bytes(std::size_t n) const { return compress::payload_header::size + body_bytes(n); }

    // values and payload in device memory. Queued on the stream; returns the payload's size.
    std::size_t encode(std::span<const float> values, std::span<std::byte> payload) {
        const std::size_t n = values.size();
        const std::size_t bytes = max_payload_bytes(n);
        compress::check_capacity(payload, bytes, "cuda::quantize");
        const auto head = detail::make_head({compress::kind::quantize, host_type::param_a,
                                             static_cast<std::uint32_t>(Block), 0, n, body_bytes(n)});
        const std::uint64_t call = calls_++;
        detail::for_each_index(stream_, n == 0 ? 1 : blocks(n),
                               detail::quantize_measure<host_type>{values.data(), n, payload.data(), head},
                               "cuda::quantize::encode");
        detail::for_each_index(stream_, (n + 7) / 8,
                               detail::quantize_encode_groups<host_type>{values.data(), n, payload.data(), seed_, call},
                               "cuda::quantize::encode");
        return bytes;
    }

    // Reads and checks the header on the host (waits for the stream), then decodes on the stream.
    // A refused payload (dtfm::wire_error) leaves out untouched.
    void decode(std::span<const std::byte> payload, std::span<float> out) {
        const std::size_t n = out.size();
        host_type::check_header(detail::read_header(stream_, payload, compress::kind::quantize, n), n);
        detail::for_each_index(stream_, (n + 7) / 8,
                               detail::quantize_decode_groups<host_type>{payload.data(), n, out.data()},
                               "cuda::quantize::decode");
    }

private:
    std::uint64_t seed_;
    std::uint64_t calls_ = 0;
    stream_t stream_;
};

static_assert(concepts::compressor_for<quantize<4>, cuda_space>);

}  // namespace dtfm::cuda
