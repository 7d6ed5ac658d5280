// error_feedback<C>: what C drops at one step is added back at the next (Seide et al. 2014;
// Karimireddy et al. 2019, "Error feedback fixes SignSGD"): v_t = g_t + e_t, send C(v_t),
// e_{t+1} = v_t − D(C(v_t)). A biased compressor (top-k, sign) then still converges.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dtfm/compress/canonical_nan.hpp"
#include "dtfm/compress/identity.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/config.hpp"
#include "dtfm/error.hpp"
#include "dtfm/spaces.hpp"

namespace dtfm::compress {

// The per-element update, shared with the device kernels of dtfm/cuda/error_feedback.cuh:
// v = g + e is what C compresses, and e' = v − D(C(v)) is carried to the next step.
DTFM_HOST_DEVICE float feedback_input(float value, float residual) { return canonical_nan(value + residual); }
DTFM_HOST_DEVICE float feedback_residual(float corrected, float decoded) { return canonical_nan(corrected - decoded); }

// Sparse compressors (top-k, random-k, cocktail) decode at their kept positions only:
// decode_scatter(payload, out, apply) calls apply(out[p], value) there and leaves the rest of out
// alone, with decode's checks.
template <class C>
concept scatter_decoder = requires(C& c, std::span<const std::byte> payload, std::span<float> out) {
    c.decode_scatter(payload, out, [](float&, float) {});
};

// The sender keeps the residual; the payload is C's own, so any C decoder (which needs no state)
// reads it. C::decode must depend only on the payload and on context the caller set on C (a
// random-k seed and step): encode decodes its own payload to learn exactly what the receiver sees.
// The tensor size is fixed by the first encode; reset() forgets the residual and the size.
template <concepts::compressor C>
    requires std::same_as<typename C::value_type, float> && std::same_as<typename C::memory_space, host_space>
class error_feedback {
public:
    using compressor_concept = compressor_tag;
    using value_type = float;
    using memory_space = host_space;
    using inner_type = C;

    error_feedback() = default;
    explicit error_feedback(C inner) : inner_(std::move(inner)) {}

    std::size_t max_payload_bytes(std::size_t n) const { return inner_.max_payload_bytes(n); }

    // Sends C(values + residual) and keeps what it lost. If C::encode throws (a payload buffer too
    // small, say), the residual is unchanged. Allocates only on the first call after a reset.
    std::size_t encode(std::span<const float> values, std::span<std::byte> payload) {
        const std::size_t n = values.size();
        if (!sized_) {
            residual_.assign(n, 0.0f);
            corrected_.resize(n);
            sized_ = true;
        } else if (n != residual_.size()) {
            throw error("error_feedback::encode: " + std::to_string(n) + " values, the residual holds " +
                        std::to_string(residual_.size()) + " (call reset() to change the tensor size)");
        }
        for (std::size_t i = 0; i < n; ++i) corrected_[i] = feedback_input(values[i], residual_[i]);
        const std::size_t bytes = inner_.encode(std::span<const float>(corrected_), payload);
        const std::span<const std::byte> sent = payload.first(bytes);
        try {
            if constexpr (scatter_decoder<C>) {
                // e' = v − D(C(v)) is v except where C kept a value: take v (a swap, not a copy)
                // and subtract at those positions only. v − 0 is v bit for bit (v is canonical).
                residual_.swap(corrected_);
                inner_.decode_scatter(sent, std::span<float>(residual_), [](float& e, float d) { e = feedback_residual(e, d); });
            } else {
                // The decoded values land in residual_ and become v − D(C(v)) in place: no third buffer.
                inner_.decode(sent, std::span<float>(residual_));
                for (std::size_t i = 0; i < n; ++i) residual_[i] = feedback_residual(corrected_[i], residual_[i]);
            }
        } catch (...) {
            // C cannot read its own payload: a bug in C. The residual is lost; start again from zero.
            std::fill(residual_.begin(), residual_.end(), 0.0f);
            throw;
        }
        return bytes;
    }

    // The receiver's side is plain C: error feedback lives at the sender only.
    void decode(std::span<const std::byte> payload, std::span<float> out) { inner_.decode(payload, out); }

    // e_t: what the next encode adds to its input. Empty before the first encode. The span is
    // valid until the next encode, reset or serialize (encode may move the residual to another buffer).
    std::span<const float> residual() const noexcept { return residual_; }

    // Drops the residual (and the tensor size), e.g. when the model is reloaded or resharded.
    // Keeps the buffers' capacity.
    void reset() noexcept {
        residual_.clear();
        sized_ = false;
    }

    // The residual, for checkpoints (train::checkpoint_saver / checkpoint_loader).
    template <class Archive>
    void serialize(Archive& a) {
        a.values("residual", residual_);
        sized_ = !residual_.empty();
        corrected_.resize(residual_.size());
    }

    // The wrapped compressor, for its own settings (a random-k step, a quantizer seed).
    C& inner() noexcept { return inner_; }
    const C& inner() const noexcept { return inner_; }

private:
    C inner_{};
    std::vector<float> residual_;
    std::vector<float> corrected_;  // v = values + residual, the input of C
    bool sized_ = false;
};

static_assert(concepts::compressor<error_feedback<identity>>);

}  // namespace dtfm::compress
