// cocktail<RandomK, TopK, Quantize>: CocktailSGD's compressor (Wang et al., ICML 2023). Of n values
// it keeps a random subset S (|S| = RandomK::k_for(n), positions from (seed, step, chunk), never
// sent), then the TopK::k_for(|S|) largest magnitudes within S, marked by a bitmap over S, and
// quantizes those with Quantize. The default — p = 0.1, top 20% of the subset, 4 bits — keeps 2%
// of the values and sends about 1/175 of the fp32 bytes. Biased by design: pair it with
// error_feedback<>.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <ratio>
#include <span>
#include <string>
#include <vector>

#include "dtfm/compress/payload.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/compress/randomk.hpp"
#include "dtfm/compress/topk.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/spaces.hpp"
#include "dtfm/wire/endian.hpp"

namespace dtfm::compress {

template <class RandomK = randomk<std::ratio<1, 10>, false>, class TopK = topk<std::ratio<1, 5>>,
          class Quantize = quantize<4>>
class cocktail {
    static_assert(std::endian::native == std::endian::little, "dtfm payloads are little-endian");
    static_assert(concepts::compressor<Quantize>);

public:
    using compressor_concept = compressor_tag;
    using value_type = float;
    using memory_space = host_space;
    static constexpr std::size_t context_bytes = 16;  // step and chunk, so a decoder can check its own

    explicit cocktail(std::uint64_t seed = 0) : subset_(seed) {}

    // The step and chunk of the next encode or decode; every rank must use the same.
    void set_context(std::uint64_t step, std::uint64_t chunk) { subset_.set_context(step, chunk); }

    static constexpr std::size_t subset_for(std::size_t n) { return RandomK::k_for(n); }
    static constexpr std::size_t kept_for(std::size_t n) { return TopK::k_for(subset_for(n)); }

    std::size_t max_payload_bytes(std::size_t n) const {
        return payload_header::size + context_bytes + bitmap_bytes(n) + quantize_.max_payload_bytes(kept_for(n));
    }

    std::size_t encode(std::span<const float> values, std::span<std::byte> payload) {
        const std::size_t n = values.size();
        const std::size_t bytes = max_payload_bytes(n);
        check_capacity(payload, bytes, "cocktail");
        const std::size_t m = subset_for(n);
        const std::size_t k = kept_for(n);
        payload_header{kind::cocktail, 0, 0, 0, n, bytes - payload_header::size}.write(payload);
        std::byte* body = payload.data() + payload_header::size;
        wire::store_le<std::uint64_t>(body, subset_.step());
        wire::store_le<std::uint64_t>(body + 8, subset_.chunk());
        std::byte* bitmap = body + context_bytes;
        std::memset(bitmap, 0, bitmap_bytes(n));

        // 1. the random subset; 2. its top-k, as positions within the subset; 3. their values.
        draw_subset(n);
        subset_values_.resize(m);
        for (std::size_t i = 0; i < m; ++i) subset_values_[i] = values[positions_[i]];
        topk_payload_.resize(topk_.max_payload_bytes(m));
        topk_.encode(subset_values_, topk_payload_);
        // topk's body: k ascending u32 positions, then their k fp32 values.
        const std::byte* chosen = topk_payload_.data() + payload_header::size;
        kept_values_.resize(k);
        for (std::size_t j = 0; j < k; ++j) {
            const std::uint32_t at = wire::load_le<std::uint32_t>(chosen + 4 * j);
            bitmap[at / 8] |= std::byte{static_cast<unsigned char>(1u << (at % 8))};
            std::memcpy(&kept_values_[j], chosen + 4 * k + 4 * j, sizeof(float));
        }
        quantize_.encode(kept_values_, std::span(bitmap + bitmap_bytes(n), quantize_.max_payload_bytes(k)));
        return bytes;
    }

    // Writes the kept values at their positions and zero elsewhere. Refuses a payload of another
    // context, a bitmap that does not mark exactly the kept count, or a malformed inner payload.
    void decode(std::span<const std::byte> payload, std::span<float> out) {
        const std::byte* bitmap = checked_bitmap(payload, out.size());
        std::fill(out.begin(), out.end(), 0.0f);
        apply_kept(bitmap, out, [](float& o, float v) { o = v; });
    }

    // apply(out[p], value) at the kept positions only (decode without the zero-fill); same checks.
    template <class Apply>
    void decode_scatter(std::span<const std::byte> payload, std::span<float> out, Apply&& apply) {
        apply_kept(checked_bitmap(payload, out.size()), out, apply);
    }

    // The parameter fields are unused and must be zero (shared with dtfm/cuda/cocktail.cuh).
    static void check_params(const payload_header& h) {
        payload_header::expect(h.param_a == 0, "param_a", h.param_a);
        payload_header::expect(h.param_b == 0, "param_b", h.param_b);
        payload_header::expect(h.param_c == 0, "param_c", h.param_c);
    }

private:
    // Checks a payload for n values, decodes its kept values and the subset's positions into
    // scratch, and returns the bitmap; nothing is written to the caller's buffer.
    const std::byte* checked_bitmap(std::span<const std::byte> payload, std::size_t n) {
        const auto h = payload_header::read(payload, kind::cocktail, n);
        const std::size_t m = subset_for(n);
        const std::size_t k = kept_for(n);
        check_params(h);
        payload_header::expect_body(h, max_payload_bytes(n) - payload_header::size);
        const std::byte* body = payload.data() + payload_header::size;
        const auto step = wire::load_le<std::uint64_t>(body);
        const auto chunk = wire::load_le<std::uint64_t>(body + 8);
        payload_header::expect(step == subset_.step(), "step", step);
        payload_header::expect(chunk == subset_.chunk(), "chunk", chunk);

        const std::byte* bitmap = body + context_bytes;
        std::size_t marked = 0;
        for (std::size_t b = 0; b < bitmap_bytes(n); ++b) marked += static_cast<std::size_t>(std::popcount(static_cast<unsigned>(bitmap[b])));
        const bool padding_clear = m % 8 == 0 || (static_cast<unsigned>(bitmap[m / 8]) >> (m % 8)) == 0;
        payload_header::expect(marked == k && padding_clear, "bitmap count", marked);

        kept_values_.resize(k);
        quantize_.decode(std::span(bitmap + bitmap_bytes(n), quantize_.max_payload_bytes(k)), kept_values_);
        draw_subset(n);
        return bitmap;
    }

    // positions_ = the random subset of n values in the current context, drawn once per context.
    void draw_subset(std::size_t n) {
        const drawn_for now{n, subset_.step(), subset_.chunk()};
        // The size check also catches a moved-from cocktail (its drawn_ stays, its positions_ go).
        if (drawn_ == now && positions_.size() == subset_for(n)) return;
        drawn_.reset();  // if the draw throws, nothing stale is trusted
        positions_.resize(subset_for(n));
        subset_.positions(n, positions_);
        drawn_ = now;
    }

    // Visits the set bits a 64-bit word at a time: a bit-by-bit test mispredicts on about every
    // kept value (a fifth of the subset, at random). The bitmap was checked: exactly k bits, none
    // in the padding.
    template <class Apply>
    void apply_kept(const std::byte* bitmap, std::span<float> out, Apply&& apply) {
        const std::size_t bytes = bitmap_bytes(out.size());
        std::size_t j = 0;
        for (std::size_t b = 0; b < bytes; b += 8) {
            std::uint64_t word = 0;
            std::memcpy(&word, bitmap + b, std::min<std::size_t>(8, bytes - b));  // little-endian host
            for (; word != 0; word &= word - 1) {
                apply(out[positions_[b * 8 + static_cast<std::size_t>(std::countr_zero(word))]], kept_values_[j++]);
            }
        }
    }

    static constexpr std::size_t bitmap_bytes(std::size_t n) { return (subset_for(n) + 7) / 8; }

    RandomK subset_;
    TopK topk_;
    Quantize quantize_;
    // Scratch sized on first use of a given n; nothing allocates after that.
    std::vector<std::uint32_t> positions_;
    // The context positions_ was drawn for: error feedback decodes the payload it just encoded, and
    // a server decodes every peer's slice of one chunk, so the draw is reused (the seed is fixed).
    struct drawn_for {
        std::size_t n;
        std::uint64_t step, chunk;
        bool operator==(const drawn_for&) const = default;
    };
    std::optional<drawn_for> drawn_;
    std::vector<float> subset_values_;
    std::vector<float> kept_values_;
    std::vector<std::byte> topk_payload_;
};

static_assert(concepts::compressor<cocktail<>>);

}  // namespace dtfm::compress
