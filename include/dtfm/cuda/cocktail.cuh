// cuda::cocktail<RandomK, TopK, Quantize>: compress::cocktail (CocktailSGD) on device buffers,
// payloads byte-identical to the host's: the random subset gathered with randomk_position, its
// exact top k by the device top-k selection (TopK must be compress::topk, the exact one), the
// bitmap packed 8 flags to a byte with the host's pack_group<1>, and the kept values quantized by
// cuda::quantize. Decoding checks the context, counts the bitmap on the device and checks the inner
// payload before it writes the output.
#pragma once

#include <thrust/scan.h>
#include <thrust/transform_reduce.h>

#include <cstddef>
#include <cstdint>
#include <ratio>
#include <span>

#include "dtfm/compress/bitpack.hpp"
#include "dtfm/compress/cocktail.hpp"
#include "dtfm/compress/payload.hpp"
#include "dtfm/compress/randomk.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/cuda/payload.cuh"
#include "dtfm/cuda/quantize.cuh"
#include "dtfm/cuda/topk.cuh"
#include "dtfm/spaces.hpp"

namespace dtfm::cuda {

namespace detail {

struct subset_gather {
    const float* x;
    std::uint64_t n;
    std::uint64_t m;
    std::uint64_t key;
    float* subset;
    std::byte* payload;
    payload_head head;
    DTFM_HOST_DEVICE void operator()(std::size_t i) const {
        if (i == 0) head.store(payload);
        subset[i] = x[compress::randomk_position(key, i, n, m)];
    }
};

struct zero_bytes {
    std::uint8_t* out;
    DTFM_HOST_DEVICE void operator()(std::size_t i) const { out[i] = 0; }
};

struct mark_kept {
    const std::uint32_t* index;
    const float* subset;
    std::uint8_t* flags;
    float* kept;
    DTFM_HOST_DEVICE void operator()(std::size_t j) const {
        flags[index[j]] = 1;
        kept[j] = subset[index[j]];
    }
};

struct pack_flags {
    const std::uint8_t* flags;  // 8 per bitmap byte, zero past the subset
    std::byte* bitmap;
    DTFM_HOST_DEVICE void operator()(std::size_t b) const { compress::pack_group<1>(flags + 8 * b, bitmap + b); }
};

struct byte_popcount {
    const std::byte* bytes;
    DTFM_HOST_DEVICE std::size_t operator()(std::size_t b) const {
        const auto v = static_cast<unsigned>(bytes[b]);
        std::size_t c = 0;
        for (unsigned t = 0; t < 8; ++t) c += (v >> t) & 1u;
        return c;
    }
};

struct bitmap_flags {
    const std::byte* bitmap;
    std::uint32_t* flags;
    DTFM_HOST_DEVICE void operator()(std::size_t i) const {
        flags[i] = (static_cast<unsigned>(bitmap[i / 8]) >> (i % 8)) & 1u;
    }
};

// After the exclusive scan, rank[i] is how many marked subset entries precede i.
struct cocktail_scatter {
    const std::byte* bitmap;
    const std::uint32_t* rank;
    const float* kept;
    std::uint64_t n;
    std::uint64_t m;
    std::uint64_t key;
    float* out;
    DTFM_HOST_DEVICE void operator()(std::size_t i) const {
        if ((static_cast<unsigned>(bitmap[i / 8]) >> (i % 8)) & 1u) {
            out[compress::randomk_position(key, i, n, m)] = kept[rank[i]];
        }
    }
};

}  // namespace detail

template <class RandomK = compress::randomk<std::ratio<1, 10>, false>, class TopK = compress::topk<std::ratio<1, 5>>,
          class Quantize = compress::quantize<4>>
class cocktail {
    static_assert(TopK::selector == 0, "cuda::cocktail selects the top k exactly: TopK must be compress::topk");

public:
    using host_type = compress::cocktail<RandomK, TopK, Quantize>;
    using quantize_type = cuda::quantize<Quantize::bits, typename Quantize::scale_type,
                                         typename Quantize::rounding_type, Quantize::block>;
    using compressor_concept = compressor_tag;
    using value_type = float;
    using memory_space = cuda_space;
    static constexpr std::size_t context_bytes = host_type::context_bytes;

    explicit cocktail(std::uint64_t seed = 0, stream_t stream = nullptr) : subset_(seed), quantize_(0, stream) {}

    void set_context(std::uint64_t step, std::uint64_t chunk) { subset_.set_context(step, chunk); }
    stream_t stream() const { return quantize_.stream(); }
    void set_stream(stream_t stream) { quantize_.set_stream(stream); }

    static constexpr std::size_t subset_for(std::size_t n) { return host_type::subset_for(n); }
    static constexpr std::size_t kept_for(std::size_t n) { return host_type::kept_for(n); }

    std::size_t max_payload_bytes(std::size_t n) const {
        return compress::payload_header::size + context_bytes + bitmap_bytes(n) +
               quantize_.max_payload_bytes(kept_for(n));
    }

    std::size_t encode(std::span<const float> values, std::span<std::byte> payload) {
        const std::size_t n = values.size();
        const std::size_t bytes = max_payload_bytes(n);
        detail::check_32bit_positions(n, "cuda::cocktail::encode");
        compress::check_capacity(payload, bytes, "cuda::cocktail");
        const std::size_t m = subset_for(n);
        const std::size_t k = kept_for(n);
        const std::uint64_t context[] = {subset_.step(), subset_.chunk()};
        const auto head = detail::make_head({compress::kind::cocktail, 0, 0, 0, n, bytes - compress::payload_header::size},
                                            context);
        const stream_t s = stream();
        subset_values_.grow(m);
        kept_values_.grow(k);
        flags_.grow(8 * bitmap_bytes(n));
        std::byte* bitmap = payload.data() + compress::payload_header::size + context_bytes;
        if (m == 0) {
            detail::write_head(s, head, payload.data());
        } else {
            detail::for_each_index(
                s, m, detail::subset_gather{values.data(), n, m, subset_.key(), subset_values_.data(), payload.data(), head},
                "cuda::cocktail::encode");
        }
        detail::for_each_index(s, 8 * bitmap_bytes(n), detail::zero_bytes{flags_.data()}, "cuda::cocktail::encode");
        if (k > 0) {
            const std::uint32_t* index = selector_.select(s, std::span<const float>(subset_values_.data(), m), k);
            detail::for_each_index(s, k, detail::mark_kept{index, subset_values_.data(), flags_.data(), kept_values_.data()},
                                   "cuda::cocktail::encode");
        }
        detail::for_each_index(s, bitmap_bytes(n), detail::pack_flags{flags_.data(), bitmap}, "cuda::cocktail::encode");
        quantize_.encode(std::span<const float>(kept_values_.data(), k),
                         std::span<std::byte>(bitmap + bitmap_bytes(n), quantize_.max_payload_bytes(k)));
        return bytes;
    }

    // Writes the kept values at their positions and zero elsewhere; every check runs first.
    void decode(std::span<const std::byte> payload, std::span<float> out) {
        const std::size_t n = out.size();
        detail::check_32bit_positions(n, "cuda::cocktail::decode");
        const stream_t s = stream();
        const auto front = detail::read_front<compress::payload_header::size + context_bytes>(s, payload);
        const std::size_t have = payload.size() < front.size() ? payload.size() : front.size();
        const auto h = compress::payload_header::read(std::span<const std::byte>(front.data(), have), payload.size(),
                                                      compress::kind::cocktail, n);
        const std::size_t m = subset_for(n);
        const std::size_t k = kept_for(n);
        host_type::check_params(h);
        compress::payload_header::expect_body(h, max_payload_bytes(n) - compress::payload_header::size);
        const auto step = wire::load_le<std::uint64_t>(front.data() + compress::payload_header::size);
        const auto chunk = wire::load_le<std::uint64_t>(front.data() + compress::payload_header::size + 8);
        compress::payload_header::expect(step == subset_.step(), "step", step);
        compress::payload_header::expect(chunk == subset_.chunk(), "chunk", chunk);

        const std::byte* bitmap = payload.data() + compress::payload_header::size + context_bytes;
        const std::size_t marked = detail::guarded("cuda::cocktail::decode", [&] {
            return thrust::transform_reduce(detail::policy(s, temp_), thrust::counting_iterator<std::size_t>(0),
                                            thrust::counting_iterator<std::size_t>(bitmap_bytes(n)),
                                            detail::byte_popcount{bitmap}, std::size_t{0}, thrust::plus<std::size_t>());
        });
        const bool padding_clear =
            m % 8 == 0 || (static_cast<unsigned>(detail::read_value(s, bitmap + m / 8)) >> (m % 8)) == 0;
        compress::payload_header::expect(marked == k && padding_clear, "bitmap count", marked);

        kept_values_.grow(k);
        quantize_.decode(std::span<const std::byte>(bitmap + bitmap_bytes(n), quantize_.max_payload_bytes(k)),
                         std::span<float>(kept_values_.data(), k));
        ranks_.grow(m);
        detail::fill(s, out.data(), n, 0.0f, "cuda::cocktail::decode");
        if (m == 0) return;
        detail::for_each_index(s, m, detail::bitmap_flags{bitmap, ranks_.data()}, "cuda::cocktail::decode");
        detail::guarded("cuda::cocktail::decode", [&] {
            thrust::exclusive_scan(detail::policy(s, temp_), ranks_.data(), ranks_.data() + m, ranks_.data());
            return 0;
        });
        detail::for_each_index(
            s, m, detail::cocktail_scatter{bitmap, ranks_.data(), kept_values_.data(), n, m, subset_.key(), out.data()},
            "cuda::cocktail::decode");
    }

private:
    static constexpr std::size_t bitmap_bytes(std::size_t n) { return (subset_for(n) + 7) / 8; }

    RandomK subset_;  // the seed, step, chunk and key of the subset
    quantize_type quantize_;
    detail::topk_selector selector_;
    detail::temp_allocator temp_;
    detail::scratch<float> subset_values_;
    detail::scratch<float> kept_values_;
    detail::scratch<std::uint8_t> flags_;
    detail::scratch<std::uint32_t> ranks_;
};

static_assert(concepts::compressor_for<cocktail<>, cuda_space>);

}  // namespace dtfm::cuda
