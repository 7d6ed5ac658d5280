// delta<C>: AC-SGD activation compression for pipeline boundaries (Wang, Yuan et al., NeurIPS
// 2022). Sender and receiver both hold m(ξ), the last activation they agreed on for sample ξ. The
// first visit of ξ sends a in full and both store it; later visits send C(a − m(ξ)) and both set
// m(ξ) += D(C(a − m(ξ))). The receiver computes on m(ξ), which tracks a as closely as C allows.
#pragma once

#include <algorithm>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dtfm/compress/canonical_nan.hpp"
#include "dtfm/compress/activation_cache.hpp"
#include "dtfm/compress/identity.hpp"
#include "dtfm/compress/payload.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/config.hpp"
#include "dtfm/error.hpp"
#include "dtfm/spaces.hpp"

namespace dtfm::compress {

// a − m(ξ), per element: what C compresses (dtfm/cuda/delta.cuh computes the same).
DTFM_HOST_DEVICE float delta_difference(float value, float reference) { return canonical_nan(value - reference); }

// m(ξ) += D(C(a − m(ξ))), per element: the one update both sides (and dtfm/cuda/delta.cuh) apply.
DTFM_HOST_DEVICE float delta_update(float reference, float decoded) {
#if defined(__CUDA_ARCH__)
    return canonical_nan(__fadd_rn(reference, decoded));
#else
    return canonical_nan(reference + decoded);
#endif
}

// Payload (kind::delta, behind the 32-byte header of payload.hpp):
//   param_a  body form: 0 = full (the activation as n little-endian fp32, body 4n bytes),
//                       1 = delta (body = C's own payload, header and all, of a − m)
//   param_b  sample id, low 32 bits       param_c  sample id, high 32 bits
//   count    n                            body_bytes  4n, or the length of C's payload
// A decoder refuses (dtfm::wire_error, before it changes any state) a payload whose id is not the
// one set_sample named, a full payload for an id it holds, a delta for an id it does not hold, and
// anything C::decode refuses; bad_value for the first three. Each of those means the two caches
// are out of step (or the payload is hostile); call clear() on both sides to start again.
//
// Keeping step: sender and receiver each run an activation_cache with the same budget, and every
// encode is matched by one decode, in the same order, of the payload it produced. Evictions are
// then identical on both sides (least recently used first, see activation_cache), so a sender
// never sends a delta against an m(ξ) its receiver dropped.
//
// n, the activation size, is fixed by the first encode or decode (one delta per boundary and
// direction). The budget bounds the bytes of activations kept: budget / (4n) samples.
template <concepts::compressor C, concepts::activation_store Store = memory_store>
    requires std::same_as<typename C::value_type, float> && std::same_as<typename C::memory_space, host_space>
class delta {
    static_assert(std::endian::native == std::endian::little, "dtfm payloads are little-endian");

public:
    using compressor_concept = compressor_tag;
    using value_type = float;
    using memory_space = host_space;
    using inner_type = C;
    using store_type = Store;

    static constexpr std::uint16_t full_body = 0;
    static constexpr std::uint16_t delta_body = 1;

    explicit delta(std::size_t budget_bytes, Store store = Store{}, C inner = C{})
        : cache_(budget_bytes, std::move(store)), inner_(std::move(inner)) {}

    // Names the sample of the next encode or decode (and only the next: each call consumes it).
    void set_sample(std::uint64_t id) noexcept { sample_ = id; }

    std::size_t max_payload_bytes(std::size_t n) const {
        return payload_header::size + std::max(n * sizeof(float), inner_.max_payload_bytes(n));
    }

    std::size_t encode(std::span<const float> values, std::span<std::byte> payload) {
        const std::uint64_t id = take_sample("encode");
        shape(values.size(), "encode");
        const std::size_t n = values.size();
        check_capacity(payload, max_payload_bytes(n), "delta");
        if (!cache_.contains(id)) {
            const std::span<float> m = cache_.insert(id);
            std::memcpy(m.data(), values.data(), n * sizeof(float));
            write_header(payload, full_body, id, n, n * sizeof(float));
            std::memcpy(payload.data() + payload_header::size, values.data(), n * sizeof(float));
            return payload_header::size + n * sizeof(float);
        }
        // The cache changes only after C has encoded and decoded: if C throws, both sides still agree.
        const std::span<const float> before = cache_.peek(id);
        for (std::size_t i = 0; i < n; ++i) scratch_[i] = delta_difference(values[i], before[i]);
        const std::span<std::byte> inner = payload.subspan(payload_header::size);
        const std::size_t inner_bytes = inner_.encode(std::span<const float>(scratch_), inner);
        inner_.decode(std::span<const std::byte>(inner.first(inner_bytes)), std::span<float>(scratch_));
        add(cache_.use(id), scratch_);
        write_header(payload, delta_body, id, n, inner_bytes);
        return payload_header::size + inner_bytes;
    }

    // Writes m(ξ) into out after applying the payload.
    void decode(std::span<const std::byte> payload, std::span<float> out) {
        const std::uint64_t id = take_sample("decode");
        shape(out.size(), "decode");
        const std::size_t n = out.size();
        const auto h = payload_header::read(payload, kind::delta, n);
        const std::uint64_t sent_id = h.param_b | (std::uint64_t{h.param_c} << 32);
        if (sent_id != id) {
            throw wire_error(wire_error::reason::bad_value, "delta payload for sample " + std::to_string(sent_id) +
                                                                ", this decode is for sample " + std::to_string(id));
        }
        const std::span<const std::byte> body = payload.subspan(payload_header::size);
        if (h.param_a == full_body) {
            payload_header::expect_body(h, n * sizeof(float));
            if (cache_.contains(id)) {
                throw wire_error(wire_error::reason::bad_value,
                                 "full payload for sample " + std::to_string(id) +
                                     ", which this receiver already holds: sender and receiver are out of step");
            }
            const std::span<float> m = cache_.insert(id);
            std::memcpy(m.data(), body.data(), n * sizeof(float));
            std::memcpy(out.data(), m.data(), n * sizeof(float));
            return;
        }
        payload_header::expect(h.param_a == delta_body, "body form", h.param_a);
        if (!cache_.contains(id)) {
            throw wire_error(wire_error::reason::bad_value,
                             "delta payload for sample " + std::to_string(id) +
                                 ", which this receiver does not hold: sender and receiver are out of step");
        }
        inner_.decode(body, std::span<float>(scratch_));  // validates C's payload before m changes
        const std::span<float> m = cache_.use(id);
        add(m, scratch_);
        std::memcpy(out.data(), m.data(), n * sizeof(float));
    }

    // m(id) as this side holds it (no use is recorded); empty if id is not held.
    std::span<const float> reference(std::uint64_t id) const noexcept { return cache_.peek(id); }

    // Forgets every sample, so each next visit is sent in full; do it on both sides at once.
    void clear() noexcept {
        cache_.clear();
        sample_.reset();
    }

    const activation_cache<Store>& cache() const noexcept { return cache_; }
    const Store& store() const noexcept { return cache_.store(); }

    // The compressor of the deltas, for its own settings (a random-k step, a quantizer seed).
    C& inner() noexcept { return inner_; }
    const C& inner() const noexcept { return inner_; }

private:
    std::uint64_t take_sample(const char* call) {
        if (!sample_) throw error(std::string("delta::") + call + ": call set_sample(id) before each encode and decode");
        return *std::exchange(sample_, std::nullopt);
    }

    void shape(std::size_t n, const char* call) {
        if (cache_.shaped()) {
            if (n != cache_.activation_size()) {
                throw error(std::string("delta::") + call + ": " + std::to_string(n) + " values, this boundary's "
                            "activations hold " + std::to_string(cache_.activation_size()));
            }
            return;
        }
        if (n == 0) throw error(std::string("delta::") + call + ": an empty activation");
        cache_.shape(n);
        scratch_.resize(n);
    }

    // Both sides update m with this one function, so their m(ξ) stay bitwise equal.
    static void add(std::span<float> m, std::span<const float> d) noexcept {
        for (std::size_t i = 0; i < m.size(); ++i) m[i] = delta_update(m[i], d[i]);
    }

    static void write_header(std::span<std::byte> payload, std::uint16_t form, std::uint64_t id, std::size_t n,
                             std::size_t body) {
        payload_header{kind::delta, form, static_cast<std::uint32_t>(id & 0xFFFFFFFFu),
                       static_cast<std::uint32_t>(id >> 32), n, body}
            .write(payload);
    }

    activation_cache<Store> cache_;
    C inner_;
    std::vector<float> scratch_;  // a − m, then D(C(a − m))
    std::optional<std::uint64_t> sample_;
};

static_assert(concepts::compressor<delta<identity>>);

}  // namespace dtfm::compress
