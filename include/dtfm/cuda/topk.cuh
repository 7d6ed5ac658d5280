// cuda::topk<Fraction>: compress::topk (exact) on device buffers, payloads byte-identical to the
// host's: the k largest |x| (NaN above +Inf, equal magnitudes: lower index first), indices ascending.
// A threshold from a stratified sample of the keys (as the host's) usually leaves a few candidates:
// one counting pass, one stable compaction; a stable radix sort of the candidates' keys, descending,
// then puts the top k first with ties in index order, and a sort of their k indices orders them.
// When fewer than k reach the threshold, every element is a candidate: slower, never different.
// Written on Thrust alone (see payload.cuh): it also runs, and is tested, on Thrust's CPP system.
#pragma once

#include <thrust/count.h>
#include <thrust/copy.h>
#include <thrust/functional.h>
#include <thrust/sort.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <ratio>
#include <span>
#include <string>

#include "dtfm/compress/payload.hpp"
#include "dtfm/compress/random.hpp"
#include "dtfm/compress/topk.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/cuda/payload.cuh"
#include "dtfm/error.hpp"
#include "dtfm/spaces.hpp"

namespace dtfm::cuda {

namespace detail {

struct sample_keys {
    const float* x;
    std::uint64_t n;
    std::uint64_t key;
    std::uint64_t sample;
    std::uint32_t* keys;
    DTFM_HOST_DEVICE void operator()(std::size_t j) const {
        keys[j] = compress::detail::magnitude_key(x[compress::stratified_index(key, j, n, sample)]);
    }
};

struct reaches {
    const float* x;
    std::uint32_t threshold;
    DTFM_HOST_DEVICE bool operator()(std::size_t i) const {
        return compress::detail::magnitude_key(x[i]) >= threshold;
    }
};

struct candidate_keys {
    const float* x;
    const std::uint32_t* index;
    std::uint32_t* keys;
    DTFM_HOST_DEVICE void operator()(std::size_t j) const { keys[j] = compress::detail::magnitude_key(x[index[j]]); }
};

struct topk_body {
    const float* x;
    const std::uint32_t* index;
    std::size_t k;
    std::byte* payload;
    payload_head head;
    DTFM_HOST_DEVICE void operator()(std::size_t j) const {
        if (j == 0) head.store(payload);
        std::byte* body = payload + compress::payload_header::size;
        store_u32(body + 4 * j, index[j]);
        store_f32(body + 4 * k + 4 * j, x[index[j]]);
    }
};

// Entry j is bad if its index is beyond n or does not increase.
struct bad_topk_index {
    const std::byte* indices;
    std::uint64_t n;
    DTFM_HOST_DEVICE bool operator()(std::size_t j) const {
        const std::uint32_t i = load_u32(indices + 4 * j);
        return i >= n || (j > 0 && i <= load_u32(indices + 4 * (j - 1)));
    }
};

struct topk_scatter {
    const std::byte* body;
    std::size_t k;
    float* out;
    DTFM_HOST_DEVICE void operator()(std::size_t j) const { out[load_u32(body + 4 * j)] = load_f32(body + 4 * k + 4 * j); }
};

// The exact top-k selection on device buffers, shared by cuda::topk and cuda::cocktail. Scratch
// grows to the largest input seen and is kept.
class topk_selector {
public:
    static constexpr std::size_t sample_size = 4096;

    // The k (1 <= k <= x.size() < 2^32) indices of the top k of x, ascending, in the first k
    // entries of the returned array (device memory, valid until the next call).
    const std::uint32_t* select(stream_t stream, std::span<const float> x, std::size_t k) {
        const std::size_t n = x.size();
        const auto exec = policy(stream, temp_);
        std::uint32_t threshold = 0;
        std::size_t count = n;
        if (n > sample_size) {
            threshold = sampled_threshold(stream, x, k);
            count = guarded("cuda::topk", [&] {
                return static_cast<std::size_t>(thrust::count_if(exec, thrust::counting_iterator<std::size_t>(0),
                                                                 thrust::counting_iterator<std::size_t>(n),
                                                                 reaches{x.data(), threshold}));
            });
            if (count < k) {  // the sample overshot: every element is a candidate
                threshold = 0;
                count = n;
            }
        }
        index_.grow(count);
        keys_.grow(count);
        std::uint32_t* index = index_.data();
        std::uint32_t* keys = keys_.data();
        guarded("cuda::topk", [&] {
            // Candidates in index order (a stable compaction; all of them when threshold is 0).
            thrust::copy_if(exec, thrust::counting_iterator<std::uint32_t>(0),
                            thrust::counting_iterator<std::uint32_t>(static_cast<std::uint32_t>(n)),
                            thrust::counting_iterator<std::size_t>(0), index, reaches{x.data(), threshold});
            return 0;
        });
        for_each_index(stream, count, candidate_keys{x.data(), index, keys}, "cuda::topk");
        guarded("cuda::topk", [&] {
            thrust::stable_sort_by_key(exec, keys, keys + count, index, thrust::greater<std::uint32_t>());
            thrust::sort(exec, index, index + k);
            return 0;
        });
        return index;
    }

    // Blocks of Thrust temporary storage held, for tests and diagnostics.
    std::size_t temp_blocks() const noexcept { return temp_.blocks(); }

private:
    // As compress::detail::sampled_threshold (seed 0): the r-th largest sampled key.
    std::uint32_t sampled_threshold(stream_t stream, std::span<const float> x, std::size_t k) {
        const std::size_t n = x.size();
        sample_.grow(sample_size);
        std::uint32_t* keys = sample_.data();
        for_each_index(stream, sample_size, sample_keys{x.data(), n, compress::stream_key(0, 0, 0), sample_size, keys},
                       "cuda::topk");
        const double expected = static_cast<double>(sample_size) * static_cast<double>(k) / static_cast<double>(n);
        const auto r = static_cast<std::size_t>(std::ceil(expected + 3 * std::sqrt(expected) + 1));
        const std::size_t rank = r < sample_size ? r : sample_size;
        guarded("cuda::topk", [&] {
            thrust::sort(policy(stream, temp_), keys, keys + sample_size, thrust::greater<std::uint32_t>());
            return 0;
        });
        return read_value(stream, keys + (rank - 1));
    }

    temp_allocator temp_;
    scratch<std::uint32_t> sample_;
    scratch<std::uint32_t> index_;
    scratch<std::uint32_t> keys_;
};

}  // namespace detail

template <class Fraction = std::ratio<1, 100>>
class topk {
public:
    using host_type = compress::topk<Fraction>;
    using compressor_concept = compressor_tag;
    using value_type = float;
    using memory_space = cuda_space;
    using fraction = Fraction;

    explicit topk(stream_t stream = nullptr) : stream_(stream) {}

    stream_t stream() const { return stream_; }
    // Waits for the work queued on the current stream first (its scratch is reused).
    void set_stream(stream_t stream) { detail::switch_stream(stream_, stream); }

    static constexpr std::size_t k_for(std::size_t n) { return host_type::k_for(n); }
    std::size_t max_payload_bytes(std::size_t n) const { return compress::payload_header::size + 8 * k_for(n); }

    // Waits for the stream a few times (the candidate count decides the work).
    std::size_t encode(std::span<const float> values, std::span<std::byte> payload) {
        const std::size_t n = values.size();
        compress::detail::check_topk_size(n, "cuda::topk");
        const std::size_t bytes = max_payload_bytes(n);
        compress::check_capacity(payload, bytes, "cuda::topk");
        const std::size_t k = k_for(n);
        const auto head = detail::make_head(compress::detail::topk_header<Fraction>(host_type::selector, n, k));
        if (k == 0) {
            detail::write_head(stream_, head, payload.data());
            return bytes;
        }
        const std::uint32_t* index = selector_.select(stream_, values, k);
        detail::for_each_index(stream_, k, detail::topk_body{values.data(), index, k, payload.data(), head},
                               "cuda::topk::encode");
        return bytes;
    }

    // Blocks of Thrust temporary storage held by the selection (encode), for tests.
    std::size_t temp_blocks() const noexcept { return selector_.temp_blocks(); }

    // Every check (the header, then every index on the device) runs before out changes.
    void decode(std::span<const std::byte> payload, std::span<float> out) {
        const std::size_t n = out.size();
        const std::size_t k = compress::detail::topk_check_header<Fraction>(
            detail::read_header(stream_, payload, compress::kind::topk, n), n);
        const std::byte* body = payload.data() + compress::payload_header::size;
        const auto bad = detail::guarded("cuda::topk::decode", [&] {
            return static_cast<std::size_t>(thrust::count_if(detail::policy(stream_, temp_),
                                                             thrust::counting_iterator<std::size_t>(0),
                                                             thrust::counting_iterator<std::size_t>(k),
                                                             detail::bad_topk_index{body, n}));
        });
        if (bad != 0) {
            throw wire_error(wire_error::reason::bad_value,
                             std::to_string(bad) + " top-k indices are beyond the " + std::to_string(n) +
                                 " elements or do not increase");
        }
        detail::fill(stream_, out.data(), n, 0.0f, "cuda::topk::decode");
        detail::for_each_index(stream_, k, detail::topk_scatter{body, k, out.data()}, "cuda::topk::decode");
    }

private:
    stream_t stream_;
    detail::topk_selector selector_;
    detail::temp_allocator temp_;
};

static_assert(concepts::compressor_for<topk<>, cuda_space>);

}  // namespace dtfm::cuda
