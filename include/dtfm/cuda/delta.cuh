// cuda::delta<C>: compress::delta (AC-SGD activation deltas) for a CUDA compressor C, with m(ξ) kept
// in device memory (cuda::device_store under the host's activation_cache, whose LRU bookkeeping
// never touches the slots). Same payload format and the same refusals as the host's; the update
// m(ξ) += D(C(a − m(ξ))) is the host's delta_update, so both sides' m(ξ) stay bitwise equal.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "dtfm/compress/activation_cache.hpp"
#include "dtfm/compress/delta.hpp"
#include "dtfm/compress/payload.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/cuda/payload.cuh"
#include "dtfm/error.hpp"
#include "dtfm/spaces.hpp"

namespace dtfm::cuda {

// activation_cache slots in device memory (on Thrust's CPP system: host memory).
class device_store {
public:
    using activation_store_concept = activation_store_tag;

    void allocate(std::size_t slots, std::size_t floats) {
        data_.grow(slots * floats);
        floats_ = floats;
    }
    std::span<float> slot(std::size_t i) noexcept { return {data_.data() + i * floats_, floats_}; }
    std::span<const float> slot(std::size_t i) const noexcept {
        return {data_.data() + i * floats_, floats_};
    }

private:
    detail::scratch<float> data_;
    std::size_t floats_ = 0;
};

static_assert(concepts::activation_store<device_store>);

namespace detail {

// The full body: head (thread 0) and the activation's bytes after it.
struct full_payload {
    const float* values;
    std::byte* payload;
    payload_head head;
    DTFM_HOST_DEVICE void operator()(std::size_t i) const {
        if (i == 0) head.store(payload);
        store_f32(payload + compress::payload_header::size + 4 * i, values[i]);
    }
};

struct load_full_body {
    const std::byte* body;
    float* m;
    float* out;
    DTFM_HOST_DEVICE void operator()(std::size_t i) const {
        const float v = load_f32(body + 4 * i);
        m[i] = v;
        out[i] = v;
    }
};

struct difference {
    const float* values;
    const float* reference;
    float* d;
    DTFM_HOST_DEVICE void operator()(std::size_t i) const { d[i] = compress::delta_difference(values[i], reference[i]); }
};

struct apply_delta {
    float* m;
    const float* d;
    float* out;  // may be null
    DTFM_HOST_DEVICE void operator()(std::size_t i) const {
        m[i] = compress::delta_update(m[i], d[i]);
        if (out) out[i] = m[i];
    }
};

}  // namespace detail

template <concepts::compressor C, concepts::activation_store Store = device_store>
    requires std::same_as<typename C::value_type, float> && std::same_as<typename C::memory_space, cuda_space>
class delta {
public:
    using compressor_concept = compressor_tag;
    using value_type = float;
    using memory_space = cuda_space;
    using inner_type = C;
    using store_type = Store;

    static constexpr std::uint16_t full_body = compress::delta<compress::identity>::full_body;
    static constexpr std::uint16_t delta_body = compress::delta<compress::identity>::delta_body;

    explicit delta(std::size_t budget_bytes, Store store = Store{}, C inner = C{})
        : cache_(budget_bytes, std::move(store)), inner_(std::move(inner)) {}

    void set_sample(std::uint64_t id) noexcept { sample_ = id; }

    std::size_t max_payload_bytes(std::size_t n) const {
        const std::size_t inner = inner_.max_payload_bytes(n);
        return compress::payload_header::size + (n * sizeof(float) > inner ? n * sizeof(float) : inner);
    }

    std::size_t encode(std::span<const float> values, std::span<std::byte> payload) {
        const std::uint64_t id = take_sample("encode");
        shape(values.size(), "encode");
        const std::size_t n = values.size();
        compress::check_capacity(payload, max_payload_bytes(n), "cuda::delta");
        const stream_t s = inner_.stream();
        if (!cache_.contains(id)) {
            const std::span<float> m = cache_.insert(id);
            detail::copy(s, values.data(), n, m.data(), "cuda::delta::encode");
            detail::for_each_index(s, n, detail::full_payload{values.data(), payload.data(), head(full_body, id, n, 4 * n)},
                                   "cuda::delta::encode");
            return compress::payload_header::size + n * sizeof(float);
        }
        const std::span<const float> before = cache_.peek(id);
        detail::for_each_index(s, n, detail::difference{values.data(), before.data(), scratch_.data()},
                               "cuda::delta::encode");
        const std::span<std::byte> inner = payload.subspan(compress::payload_header::size);
        const std::size_t inner_bytes = inner_.encode(std::span<const float>(scratch_.data(), n), inner);
        inner_.decode(std::span<const std::byte>(inner.first(inner_bytes)), std::span<float>(scratch_.data(), n));
        const std::span<float> m = cache_.use(id);
        detail::for_each_index(s, n, detail::apply_delta{m.data(), scratch_.data(), nullptr}, "cuda::delta::encode");
        detail::write_head(s, head(delta_body, id, n, inner_bytes), payload.data());
        return compress::payload_header::size + inner_bytes;
    }

    // Writes m(ξ) into out after applying the payload; refuses as compress::delta does.
    void decode(std::span<const std::byte> payload, std::span<float> out) {
        const std::uint64_t id = take_sample("decode");
        shape(out.size(), "decode");
        const std::size_t n = out.size();
        const stream_t s = inner_.stream();
        const auto h = detail::read_header(s, payload, compress::kind::delta, n);
        const std::uint64_t sent_id = h.param_b | (std::uint64_t{h.param_c} << 32);
        if (sent_id != id) {
            throw wire_error(wire_error::reason::bad_value, "delta payload for sample " + std::to_string(sent_id) +
                                                                ", this decode is for sample " + std::to_string(id));
        }
        const std::span<const std::byte> body = payload.subspan(compress::payload_header::size);
        if (h.param_a == full_body) {
            compress::payload_header::expect_body(h, n * sizeof(float));
            if (cache_.contains(id)) {
                throw wire_error(wire_error::reason::bad_value,
                                 "full payload for sample " + std::to_string(id) +
                                     ", which this receiver already holds: sender and receiver are out of step");
            }
            const std::span<float> m = cache_.insert(id);
            detail::for_each_index(s, n, detail::load_full_body{body.data(), m.data(), out.data()},
                                   "cuda::delta::decode");
            return;
        }
        compress::payload_header::expect(h.param_a == delta_body, "body form", h.param_a);
        if (!cache_.contains(id)) {
            throw wire_error(wire_error::reason::bad_value,
                             "delta payload for sample " + std::to_string(id) +
                                 ", which this receiver does not hold: sender and receiver are out of step");
        }
        inner_.decode(body, std::span<float>(scratch_.data(), n));  // validates C's payload before m changes
        const std::span<float> m = cache_.use(id);
        detail::for_each_index(s, n, detail::apply_delta{m.data(), scratch_.data(), out.data()}, "cuda::delta::decode");
    }

    // m(id) in device memory as this side holds it; empty if id is not held.
    std::span<const float> reference(std::uint64_t id) const noexcept { return cache_.peek(id); }

    void clear() noexcept {
        cache_.clear();
        sample_.reset();
    }

    C& inner() noexcept { return inner_; }
    const C& inner() const noexcept { return inner_; }

private:
    static detail::payload_head head(std::uint16_t form, std::uint64_t id, std::size_t n, std::size_t body) {
        return detail::make_head({compress::kind::delta, form, static_cast<std::uint32_t>(id & 0xFFFFFFFFu),
                                  static_cast<std::uint32_t>(id >> 32), n, body});
    }

    std::uint64_t take_sample(const char* call) {
        if (!sample_) {
            throw error(std::string("cuda::delta::") + call + ": call set_sample(id) before each encode and decode");
        }
        return *std::exchange(sample_, std::nullopt);
    }

    void shape(std::size_t n, const char* call) {
        if (cache_.shaped()) {
            if (n != cache_.activation_size()) {
                throw error(std::string("cuda::delta::") + call + ": " + std::to_string(n) +
                            " values, this boundary's activations hold " + std::to_string(cache_.activation_size()));
            }
            return;
        }
        if (n == 0) throw error(std::string("cuda::delta::") + call + ": an empty activation");
        cache_.shape(n);
        scratch_.grow(n);
    }

    compress::activation_cache<Store> cache_;
    C inner_;
    detail::scratch<float> scratch_;
    std::optional<std::uint64_t> sample_;
};

}  // namespace dtfm::cuda
