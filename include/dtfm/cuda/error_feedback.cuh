// cuda::error_feedback<C>: compress::error_feedback for a CUDA compressor C, the residual kept in
// device memory: v = g + e, send C(v), e' = v − D(C(v)), per element with the host's own
// feedback_input / feedback_residual. The payload is C's, so any decoder of C's format reads it.
#pragma once

#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <utility>

#include "dtfm/compress/error_feedback.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/cuda/payload.cuh"
#include "dtfm/error.hpp"
#include "dtfm/spaces.hpp"

namespace dtfm::cuda {

namespace detail {

struct feedback_inputs {
    const float* values;
    const float* residual;
    float* corrected;
    DTFM_HOST_DEVICE void operator()(std::size_t i) const {
        corrected[i] = compress::feedback_input(values[i], residual[i]);
    }
};

struct feedback_residuals {
    const float* corrected;
    float* residual;  // holds D(C(v)) on entry
    DTFM_HOST_DEVICE void operator()(std::size_t i) const {
        residual[i] = compress::feedback_residual(corrected[i], residual[i]);
    }
};

}  // namespace detail

// C: a CUDA compressor with a stream() (its kernels and these run on that stream, in order). The
// tensor size is fixed by the first encode; reset() forgets the residual and the size.
template <concepts::compressor C>
    requires std::same_as<typename C::value_type, float> && std::same_as<typename C::memory_space, cuda_space>
class error_feedback {
public:
    using compressor_concept = compressor_tag;
    using value_type = float;
    using memory_space = cuda_space;
    using inner_type = C;

    error_feedback() = default;
    explicit error_feedback(C inner) : inner_(std::move(inner)) {}

    std::size_t max_payload_bytes(std::size_t n) const { return inner_.max_payload_bytes(n); }

    // Waits for the stream once (C's decode of its own payload reads the header). If C throws, the
    // residual is unchanged (encode) or zero (decode: a bug in C).
    std::size_t encode(std::span<const float> values, std::span<std::byte> payload) {
        const std::size_t n = values.size();
        if (!sized_) {
            residual_.grow(n);
            corrected_.grow(n);
            detail::fill(inner_.stream(), residual_.data(), n, 0.0f, "cuda::error_feedback");
            n_ = n;
            sized_ = true;
        } else if (n != n_) {
            throw error("cuda::error_feedback::encode: " + std::to_string(n) + " values, the residual holds " +
                        std::to_string(n_) + " (call reset() to change the tensor size)");
        }
        detail::for_each_index(inner_.stream(), n,
                               detail::feedback_inputs{values.data(), residual_.data(), corrected_.data()},
                               "cuda::error_feedback::encode");
        const std::size_t bytes = inner_.encode(std::span<const float>(corrected_.data(), n), payload);
        try {
            inner_.decode(std::span<const std::byte>(payload.first(bytes)), std::span<float>(residual_.data(), n));
        } catch (...) {
            detail::fill(inner_.stream(), residual_.data(), n, 0.0f, "cuda::error_feedback");
            throw;
        }
        detail::for_each_index(inner_.stream(), n, detail::feedback_residuals{corrected_.data(), residual_.data()},
                               "cuda::error_feedback::encode");
        return bytes;
    }

    void decode(std::span<const std::byte> payload, std::span<float> out) { inner_.decode(payload, out); }

    // e_t in device memory; empty before the first encode.
    std::span<const float> residual() noexcept { return {residual_.data(), sized_ ? n_ : 0}; }

    void reset() noexcept {
        sized_ = false;
        n_ = 0;
    }

    C& inner() noexcept { return inner_; }
    const C& inner() const noexcept { return inner_; }

private:
    C inner_{};
    detail::scratch<float> residual_;
    detail::scratch<float> corrected_;
    std::size_t n_ = 0;
    bool sized_ = false;
};

}  // namespace dtfm::cuda
