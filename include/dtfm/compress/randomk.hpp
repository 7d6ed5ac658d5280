// randomk: k = round(n·Fraction) values at positions that are a function of (seed, step, chunk)
// alone, so only the values travel. Stratified choice: [0, n) is cut into k strata and one position is
// drawn uniformly in each (random.hpp's stratified_index), so position p is kept with probability
// π_p = 1/|stratum of p| (= k/n when k divides n). Scaled decoding divides by π_p (Horvitz–Thompson),
// so E[decode(encode(x))] = x over steps; unscaled decoding keeps the raw values. The kept set is not
// a uniform k-subset (exactly one per stratum, so it is spread evenly), which costs nothing to
// unbiasedness and makes it allocation-free, sorted, and computable per position on a device.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <ratio>
#include <span>
#include <string>

#include "dtfm/compress/canonical_nan.hpp"
#include "dtfm/compress/payload.hpp"
#include "dtfm/compress/random.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/error.hpp"
#include "dtfm/spaces.hpp"
#include "dtfm/wire/endian.hpp"

namespace dtfm::compress {

// The i-th kept position (0 ≤ i < k) of an n-element chunk, for the stream key of (seed, step,
// chunk): positions increase with i and no two coincide. The same on host and device.
DTFM_HOST_DEVICE std::uint32_t randomk_position(std::uint64_t key, std::uint64_t i, std::uint64_t n, std::uint64_t k) {
    return stratified_index(key, i, n, k);
}

// The size of stratum i, 1/π of its position: what a scaled decode multiplies the kept value by.
DTFM_HOST_DEVICE std::uint32_t randomk_stratum_size(std::uint64_t i, std::uint64_t n, std::uint64_t k) {
    return static_cast<std::uint32_t>(stratum_begin(i + 1, n, k) - stratum_begin(i, n, k));
}

// A kept value as a decoder writes it: times its stratum's size when scaled (Horvitz–Thompson).
DTFM_HOST_DEVICE float randomk_decoded(float v, std::uint32_t stratum_size, bool scaled) {
#if defined(__CUDA_ARCH__)
    return scaled ? canonical_nan(__fmul_rn(v, static_cast<float>(stratum_size))) : v;
#else
    return scaled ? canonical_nan(v * static_cast<float>(stratum_size)) : v;
#endif
}

// Payload: header {kind::randomk, param_a = Scaled (0 or 1), param_b/param_c = Fraction num/den,
// count = n, body = 24 + 4k}; body = the encoder's step, chunk and seed (u64 each), then the k fp32
// values in position order. The decoder derives the positions from its own context and refuses a
// payload whose context differs (wire_error bad_value): a rank out of step is an error, not noise.
template <class Fraction = std::ratio<1, 100>, bool Scaled = true>
class randomk {
    static_assert(std::endian::native == std::endian::little, "dtfm payloads are little-endian");
    static_assert(detail::valid_fraction<Fraction>, "Fraction must be in (0, 1] with a denominator below 2^31");

public:
    using compressor_concept = compressor_tag;
    using value_type = float;
    using memory_space = host_space;
    using fraction = Fraction;
    static constexpr bool scaled = Scaled;
    static constexpr std::size_t context_bytes = 24;

    // Every rank that encodes or decodes the same chunk must use the same seed.
    explicit randomk(std::uint64_t seed = 0) : seed_(seed) { set_context(0, 0); }

    // The step and chunk the next encode or decode is for; encoder and decoder must agree.
    void set_context(std::uint64_t step, std::uint64_t chunk) {
        step_ = step;
        chunk_ = chunk;
        key_ = stream_key(seed_, step, chunk);
    }

    std::uint64_t seed() const { return seed_; }
    std::uint64_t step() const { return step_; }
    std::uint64_t chunk() const { return chunk_; }
    // The key randomk_position takes for the current context.
    std::uint64_t key() const { return key_; }

    // 0 for n = 0, else max(1, round(n·Fraction)) with halves rounded up; never above n.
    static constexpr std::size_t k_for(std::size_t n) { return detail::fraction_count<Fraction>(n); }

    std::size_t max_payload_bytes(std::size_t n) const { return payload_header::size + context_bytes + 4 * k_for(n); }

    // The k_for(n) kept positions of the current context, ascending, into out (of exactly that size).
    void positions(std::size_t n, std::span<std::uint32_t> out) const {
        check_size(n, "positions");
        if (out.size() != k_for(n)) {
            throw error("randomk::positions: output of " + std::to_string(out.size()) + " positions, " +
                        std::to_string(n) + " elements keep " + std::to_string(k_for(n)));
        }
        for_each_kept(n, [&](std::size_t i, std::uint32_t p, std::uint64_t) { out[i] = p; });
    }

    std::size_t encode(std::span<const float> values, std::span<std::byte> payload) {
        const std::size_t n = values.size();
        check_size(n, "encode");
        const std::size_t bytes = max_payload_bytes(n);
        check_capacity(payload, bytes, "randomk");
        const std::size_t k = k_for(n);
        payload_header{kind::randomk,
                       Scaled ? std::uint16_t{1} : std::uint16_t{0},
                       static_cast<std::uint32_t>(Fraction::num),
                       static_cast<std::uint32_t>(Fraction::den),
                       n,
                       context_bytes + 4 * static_cast<std::uint64_t>(k)}
            .write(payload);
        std::byte* body = payload.data() + payload_header::size;
        wire::store_le<std::uint64_t>(body, step_);
        wire::store_le<std::uint64_t>(body + 8, chunk_);
        wire::store_le<std::uint64_t>(body + 16, seed_);
        std::byte* kept = body + context_bytes;
        for_each_kept(n, [&](std::size_t i, std::uint32_t p, std::uint64_t) {
            wire::store_le<std::uint32_t>(kept + 4 * i, std::bit_cast<std::uint32_t>(values[p]));
        });
        return bytes;
    }

    // Zero-fills out and scatters the values (each times its stratum's size when Scaled). Every
    // check runs before the first write to out.
    void decode(std::span<const std::byte> payload, std::span<float> out) {
        const std::byte* kept = checked_values(payload, out.size());
        std::fill(out.begin(), out.end(), 0.0f);
        apply_kept(kept, out, [](float& o, float v) { o = v; });
    }

    // apply(out[p], value) at the kept positions only (decode without the zero-fill); same checks.
    template <class Apply>
    void decode_scatter(std::span<const std::byte> payload, std::span<float> out, Apply&& apply) {
        apply_kept(checked_values(payload, out.size()), out, apply);
    }

    // The checks decode makes of a header read for n values, and of the 24 context bytes after it
    // (shared with dtfm/cuda/randomk.cuh).
    static void check_header(const payload_header& h, std::size_t n) {
        payload_header::expect(h.param_a == (Scaled ? 1u : 0u), "scaled", h.param_a);
        payload_header::expect(h.param_b == static_cast<std::uint64_t>(Fraction::num), "fraction numerator", h.param_b);
        payload_header::expect(h.param_c == static_cast<std::uint64_t>(Fraction::den), "fraction denominator",
                               h.param_c);
        payload_header::expect(h.count <= std::numeric_limits<std::uint32_t>::max(), "count", h.count);
        payload_header::expect_body(h, context_bytes + 4 * static_cast<std::uint64_t>(k_for(n)));
    }

    void check_context(const std::byte* context) const {
        expect_context(wire::load_le<std::uint64_t>(context), step_, "step");
        expect_context(wire::load_le<std::uint64_t>(context + 8), chunk_, "chunk");
        expect_context(wire::load_le<std::uint64_t>(context + 16), seed_, "seed");
    }

private:
    // The kept values of a payload for n values, once every check passed.
    const std::byte* checked_values(std::span<const std::byte> payload, std::size_t n) const {
        check_header(payload_header::read(payload, kind::randomk, n), n);
        const std::byte* body = payload.data() + payload_header::size;
        check_context(body);
        return body + context_bytes;
    }

    template <class Apply>
    void apply_kept(const std::byte* kept, std::span<float> out, Apply&& apply) const {
        for_each_kept(out.size(), [&](std::size_t i, std::uint32_t p, std::uint64_t stratum) {
            const float v = std::bit_cast<float>(wire::load_le<std::uint32_t>(kept + 4 * i));
            apply(out[p], randomk_decoded(v, static_cast<std::uint32_t>(stratum), Scaled));
        });
    }

    static void check_size(std::size_t n, const char* what) {
        if (n > std::numeric_limits<std::uint32_t>::max()) {
            throw error(std::string("randomk::") + what + ": " + std::to_string(n) +
                        " elements, more than its 32-bit positions address (2^32 - 1)");
        }
    }

    static void expect_context(std::uint64_t got, std::uint64_t mine, const char* field) {
        if (got != mine) {
            throw wire_error(wire_error::reason::bad_value, std::string("randomk payload for ") + field + " " +
                                                                std::to_string(got) + ", this decoder is at " +
                                                                std::to_string(mine));
        }
    }

    // f(i, position, stratum size) for each kept i, in order; the same positions as randomk_position.
    // Stratum i is [⌊i·n/k⌋, ⌊(i+1)·n/k⌋): with n = q·k + r and w_i = i·r mod k, its size is
    // q + [w_i ≥ k − r], and ⌊(i+L)·n/k⌋ = ⌊i·n/k⌋ + Q + [w_i ≥ k − R] with L·n = Q·k + R. So
    // L = 16 lanes step 16 strata at a time without a division, independently of each other: the
    // lanes' loop (bounds, then the hash, two 64-bit products) vectorises, where one stratum after
    // another was a chain of dependent steps and scalar hashes (two thirds of cocktail's encode).
    template <class F>
    void for_each_kept(std::size_t n, F f) const {
        constexpr std::uint32_t lanes = 16;
        const std::size_t k = k_for(n);
        if (k == 0) return;
        // Every value below fits 32 bits: n < 2^32, k ≤ n, and w, r, R < k.
        const auto k32 = static_cast<std::uint32_t>(k);
        const auto q = static_cast<std::uint32_t>(n / k);
        const auto r = static_cast<std::uint32_t>(n % k);
        const auto big_q = static_cast<std::uint32_t>(std::uint64_t{lanes} * n / k);
        const auto big_r = static_cast<std::uint32_t>(std::uint64_t{lanes} * n % k);
        std::uint32_t begin[lanes];
        std::uint32_t w[lanes];
        for (std::uint32_t j = 0; j < lanes; ++j) {
            begin[j] = static_cast<std::uint32_t>(std::uint64_t{j} * n / k);
            w[j] = static_cast<std::uint32_t>(std::uint64_t{j} * r % k);
        }
        std::uint32_t position[lanes];
        std::uint32_t size[lanes];
        for (std::size_t i0 = 0; i0 < k; i0 += lanes) {
            for (std::uint32_t j = 0; j < lanes; ++j) {
                size[j] = q + static_cast<std::uint32_t>(w[j] >= k32 - r);
                position[j] = begin[j] + below(draw(key_, i0 + j), size[j]);
                const bool carry = w[j] >= k32 - big_r;
                begin[j] += big_q + static_cast<std::uint32_t>(carry);
                w[j] = carry ? w[j] - (k32 - big_r) : w[j] + big_r;
            }
            // A full group's calls apart, with their count known: g++ turned the variable-count
            // loop into a rep movs when f only copies, which cost more than the hashes.
            if (k - i0 >= lanes) {
                for (std::uint32_t j = 0; j < lanes; ++j) f(i0 + j, position[j], std::uint64_t{size[j]});
            } else {
                for (std::size_t j = 0; j < k - i0; ++j) f(i0 + j, position[j], std::uint64_t{size[j]});
            }
        }
    }

    std::uint64_t seed_;
    std::uint64_t step_ = 0;
    std::uint64_t chunk_ = 0;
    std::uint64_t key_ = 0;
};

static_assert(concepts::compressor<randomk<>>);
static_assert(concepts::compressor<randomk<std::ratio<1, 10>, false>>);

}  // namespace dtfm::compress
