// cuda::randomk<Fraction, Scaled>: compress::randomk on device buffers, payloads byte-identical to
// the host's. Thread i computes the i-th kept position with the host's randomk_position (a pure
// function of the key, so no thread waits for another) and gathers or scatters its value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ratio>
#include <span>
#include <string>

#include "dtfm/compress/payload.hpp"
#include "dtfm/compress/random.hpp"
#include "dtfm/compress/randomk.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/cuda/payload.cuh"
#include "dtfm/error.hpp"
#include "dtfm/spaces.hpp"

namespace dtfm::cuda {

namespace detail {

struct randomk_gather {
    const float* x;
    std::uint64_t n;
    std::uint64_t k;
    std::uint64_t key;
    std::byte* payload;
    payload_head head;

    DTFM_HOST_DEVICE void operator()(std::size_t i) const {
        if (i == 0) head.store(payload);
        const std::uint32_t p = compress::randomk_position(key, i, n, k);
        store_f32(payload + head.size + 4 * i, x[p]);
    }
};

struct randomk_scatter {
    const std::byte* kept;
    std::uint64_t n;
    std::uint64_t k;
    std::uint64_t key;
    bool scaled;
    float* out;

    DTFM_HOST_DEVICE void operator()(std::size_t i) const {
        const std::uint32_t p = compress::randomk_position(key, i, n, k);
        out[p] = compress::randomk_decoded(load_f32(kept + 4 * i), compress::randomk_stratum_size(i, n, k), scaled);
    }
};

}  // namespace detail

template <class Fraction = std::ratio<1, 100>, bool Scaled = true>
class randomk {
public:
    using host_type = compress::randomk<Fraction, Scaled>;
    using compressor_concept = compressor_tag;
    using value_type = float;
    using memory_space = cuda_space;
    using fraction = Fraction;
    static constexpr bool scaled = Scaled;
    static constexpr std::size_t context_bytes = host_type::context_bytes;

    // Every rank that encodes or decodes the same chunk must use the same seed.
    explicit randomk(std::uint64_t seed = 0, stream_t stream = nullptr) : context_(seed), stream_(stream) {}

    void set_context(std::uint64_t step, std::uint64_t chunk) { context_.set_context(step, chunk); }
    std::uint64_t seed() const { return context_.seed(); }
    std::uint64_t step() const { return context_.step(); }
    std::uint64_t chunk() const { return context_.chunk(); }
    std::uint64_t key() const { return context_.key(); }
    stream_t stream() const { return stream_; }
    // Waits for the work queued on the current stream first (its scratch is reused).
    void set_stream(stream_t stream) { detail::switch_stream(stream_, stream); }

    static constexpr std::size_t k_for(std::size_t n) { return host_type::k_for(n); }
    std::size_t max_payload_bytes(std::size_t n) const { return context_.max_payload_bytes(n); }

    std::size_t encode(std::span<const float> values, std::span<std::byte> payload) {
        const std::size_t n = values.size();
        detail::check_32bit_positions(n, "cuda::randomk::encode");
        const std::size_t bytes = max_payload_bytes(n);
        compress::check_capacity(payload, bytes, "cuda::randomk");
        const std::size_t k = k_for(n);
        const std::uint64_t context[] = {step(), chunk(), seed()};
        const auto head = detail::make_head({compress::kind::randomk, Scaled ? std::uint16_t{1} : std::uint16_t{0},
                                             static_cast<std::uint32_t>(Fraction::num),
                                             static_cast<std::uint32_t>(Fraction::den), n,
                                             context_bytes + 4 * static_cast<std::uint64_t>(k)},
                                            context);
        if (k == 0) {
            detail::write_head(stream_, head, payload.data());
        } else {
            detail::for_each_index(stream_, k, detail::randomk_gather{values.data(), n, k, key(), payload.data(), head},
                                   "cuda::randomk::encode");
        }
        return bytes;
    }

    // Zero-fills out and scatters the values; every check runs (on the host) before out changes.
    void decode(std::span<const std::byte> payload, std::span<float> out) {
        const std::size_t n = out.size();
        const auto front = detail::read_front<compress::payload_header::size + context_bytes>(stream_, payload);
        const std::size_t have = payload.size() < front.size() ? payload.size() : front.size();
        host_type::check_header(
            compress::payload_header::read(std::span<const std::byte>(front.data(), have), payload.size(),
                                           compress::kind::randomk, n),
            n);
        context_.check_context(front.data() + compress::payload_header::size);  // the body holds them: 24 ≤ body
        const std::size_t k = k_for(n);
        detail::fill(stream_, out.data(), n, 0.0f, "cuda::randomk::decode");
        detail::for_each_index(stream_, k,
                               detail::randomk_scatter{payload.data() + compress::payload_header::size + context_bytes,
                                                       n, k, key(), Scaled, out.data()},
                               "cuda::randomk::decode");
    }

private:
    host_type context_;  // the seed, step, chunk and key, and the host's checks of them
    stream_t stream_;
};

static_assert(concepts::compressor_for<randomk<>, cuda_space>);

}  // namespace dtfm::cuda
