// topk and topk_approx: the k = round(n·Fraction) values of largest magnitude, sent as k ascending u32
// indices then their k fp32 values. A threshold from a sample brackets the k-th largest |x| (as in
// Floyd–Rivest selection), one pass collects the few elements reaching it, and a radix select on the
// bits of |x| (a non-negative float's bit pattern orders like its value) picks the k among them.
// topk is exact whatever the sample; topk_approx skips the repair when the sample overshoots.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <ratio>
#include <span>
#include <string>
#include <vector>

#include "dtfm/compress/payload.hpp"
#include "dtfm/compress/random.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/error.hpp"
#include "dtfm/spaces.hpp"
#include "dtfm/wire/endian.hpp"

namespace dtfm::compress {

namespace detail {

// The order top-k ranks by: |x| as its bit pattern, with every NaN equal to the others and above
// +Inf, so a diverging tensor's NaNs are sent (and seen) rather than silently kept back.
DTFM_HOST_DEVICE std::uint32_t magnitude_key(float v) {
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(v) & 0x7FFFFFFFu;
    return bits < 0x7F800001u ? bits : 0x7F800001u;
}

// The matches among the keys of block [j, j + 64) (all of it must exist), one bit each: vector
// compares into a byte each, then 8 bytes of 0 or 1 to 8 bits with one multiply (byte i lands on
// bit 56 + i, no carry reaching bit 56). OR-ing `match << m` into the mask directly made g++ widen
// and shift every lane to 64 bits and reduce across the vector: 15% slower with AVX-512, 2× with
// SSE2, in the threshold pass that is most of topk_approx's encode.
template <class KeyAt>
std::uint64_t match_mask(KeyAt key_at, std::size_t j, std::uint32_t low, std::uint32_t width) {
    std::uint8_t hit[64];
    for (std::size_t m = 0; m < 64; ++m) hit[m] = static_cast<std::uint8_t>(key_at(j + m) - low < width);
    std::uint64_t mask = 0;
    for (std::size_t t = 0; t < 8; ++t) {
        std::uint64_t w;
        std::memcpy(&w, hit + 8 * t, 8);
        mask |= ((w * 0x0102040810204080u) >> 56) << (8 * t);
    }
    return mask;
}

// Calls f(j) for each j in [begin, end) whose key lies in [low, low + width), in order. Blocks of 64
// are matched branch-free, then only their matches are visited: sparse matches cost about one read
// of the keys, and no mispredicted branch each.
template <class KeyAt, class F>
void for_each_in_range(std::size_t begin, std::size_t end, KeyAt key_at, std::uint32_t low, std::uint32_t width, F f) {
    const std::size_t full = end - (end - begin) % 64;
    for (std::size_t j = begin; j < full; j += 64) {
        for (std::uint64_t mask = match_mask(key_at, j, low, width); mask != 0; mask &= mask - 1) {
            f(j + static_cast<std::size_t>(std::countr_zero(mask)));
        }
    }
    for (std::size_t j = full; j < end; ++j) {
        if (key_at(j) - low < width) f(j);
    }
}

// Keys are below 2^31: [t, t + at_least(t)) holds every key from t up.
constexpr std::uint32_t at_least(std::uint32_t t) { return 0x80000000u - t; }

// The k-th largest key of a sequence: keep every key above `key`, and of those equal to it the
// first `ties` in sequence order (equal magnitude: the lower index wins).
struct kth_key {
    std::uint32_t key = 0;
    std::size_t ties = 0;
};

// Radix select over keys below 2^31, most significant digit first: 11 bits, then 10, then 10.

// Histogram of the top 11 bits of every key; four interleaved copies break the increment chains
// that runs of equal keys would make.
template <class KeyAt>
std::array<std::uint32_t, 2048> top_digit_histogram(std::size_t count, KeyAt key_at) {
    std::array<std::uint32_t, 4 * 2048> copies{};
    const std::size_t full = count - count % 4;
    for (std::size_t j = 0; j < full; j += 4) {
        ++copies[key_at(j) >> 20];
        ++copies[2048 + (key_at(j + 1) >> 20)];
        ++copies[4096 + (key_at(j + 2) >> 20)];
        ++copies[6144 + (key_at(j + 3) >> 20)];
    }
    for (std::size_t j = full; j < count; ++j) ++copies[key_at(j) >> 20];
    std::array<std::uint32_t, 2048> hist{};
    for (std::size_t b = 0; b < 2048; ++b) hist[b] = copies[b] + copies[2048 + b] + copies[4096 + b] + copies[6144 + b];
    return hist;
}

// The bin holding the need-th largest of the keys counted in hist; need becomes its rank within the
// bin. The bins hold at least need keys in all.
inline std::uint32_t descend(const std::uint32_t* hist, std::uint32_t bins, std::size_t& need) {
    std::uint32_t b = bins - 1;
    while (hist[b] < need) need -= hist[b--];
    return b;
}

// Histogram of the 10-bit digit at `shift` of the keys in [prefix, prefix + width), `matching` of
// the count. Few matches are visited one by one; many (a magnitude shared by much of the input,
// such as the zeros of a sparse tensor) are counted in one branch-free pass with the others in a
// spare bin, as the top digit is.
template <class KeyAt>
std::array<std::uint32_t, 1024> digit_histogram(std::size_t count, KeyAt key_at, std::uint32_t prefix,
                                                std::uint32_t width, unsigned shift, std::size_t matching) {
    std::array<std::uint32_t, 1024> hist{};
    if (matching <= count / 16) {
        for_each_in_range(0, count, key_at, prefix, width,
                          [&](std::size_t j) { ++hist[(key_at(j) >> shift) & 1023u]; });
        return hist;
    }
    std::array<std::uint32_t, 4 * 1025> copies{};
    auto bin = [&](std::size_t j) {
        const std::uint32_t key = key_at(j);
        return key - prefix < width ? (key >> shift) & 1023u : 1024u;
    };
    const std::size_t full = count - count % 4;
    for (std::size_t j = 0; j < full; j += 4) {
        ++copies[bin(j)];
        ++copies[1025 + bin(j + 1)];
        ++copies[2050 + bin(j + 2)];
        ++copies[3075 + bin(j + 3)];
    }
    for (std::size_t j = full; j < count; ++j) ++copies[bin(j)];
    for (std::size_t b = 0; b < 1024; ++b) hist[b] = copies[b] + copies[1025 + b] + copies[2050 + b] + copies[3075 + b];
    return hist;
}

// The two lower digits, counting only the keys whose top digit is `top` (`matching` of them).
template <class KeyAt>
kth_key select_low_digits(std::size_t count, KeyAt key_at, std::uint32_t top, std::size_t need, std::size_t matching) {
    std::uint32_t prefix = top << 20;
    auto hist = digit_histogram(count, key_at, prefix, 1u << 20, 10, matching);
    const std::uint32_t middle = descend(hist.data(), 1024, need);
    matching = hist[middle];
    prefix |= middle << 10;
    hist = digit_histogram(count, key_at, prefix, 1u << 10, 0, matching);
    prefix |= descend(hist.data(), 1024, need);
    return {prefix, need};
}

// Needs 1 <= k <= count < 2^32.
template <class KeyAt>
kth_key select_kth_key(std::size_t count, std::size_t k, KeyAt key_at) {
    const auto hist = top_digit_histogram(count, key_at);
    std::size_t need = k;
    const std::uint32_t top = descend(hist.data(), 2048, need);
    return select_low_digits(count, key_at, top, need, hist[top]);
}

// Where the body's indices and values go; writes them little-endian, in selection order.
struct topk_body_writer {
    std::byte* indices;
    std::byte* values;
    std::size_t written = 0;

    void put(std::uint32_t index, float value) {
        wire::store_le<std::uint32_t>(indices + 4 * written, index);
        wire::store_le<std::uint32_t>(values + 4 * written, std::bit_cast<std::uint32_t>(value));
        ++written;
    }
};

// The end of the shortest prefix [0, end) holding `ties` keys equal to t (0 for none): blocks of 64
// are counted with popcount, so a long run of ties is skipped at the speed of a read.
template <class KeyAt>
std::size_t end_of_ties(std::size_t count, KeyAt key_at, std::uint32_t t, std::size_t ties) {
    if (ties == 0) return 0;
    const std::size_t full = count - count % 64;
    std::size_t j = 0;
    for (; j < full; j += 64) {
        std::uint64_t mask = match_mask(key_at, j, t, 1);
        const auto equal = static_cast<std::size_t>(std::popcount(mask));
        if (equal < ties) {
            ties -= equal;
            continue;
        }
        for (; ties > 1; --ties) mask &= mask - 1;
        return j + static_cast<std::size_t>(std::countr_zero(mask)) + 1;
    }
    for (; j < count; ++j) {
        if (key_at(j) == t && --ties == 0) return j + 1;
    }
    return count;
}

// Writes the elements of the sequence (index_at(j), value_at(j)), j < count, that t selects, in
// sequence order: those equal to t.key up to its ties-th, then only those above it.
template <class IndexAt, class ValueAt>
void emit_selected(std::size_t count, IndexAt index_at, ValueAt value_at, kth_key t, std::size_t k,
                   topk_body_writer& out) {
    auto key_at = [&value_at](std::size_t j) { return magnitude_key(value_at(j)); };
    auto put = [&](std::size_t j) {
        if (out.written < k) out.put(index_at(j), value_at(j));
    };
    const std::size_t split = end_of_ties(count, key_at, t.key, t.ties);
    for_each_in_range(0, split, key_at, t.key, at_least(t.key), put);
    for_each_in_range(split, count, key_at, t.key + 1, at_least(t.key + 1), put);
}

// The elements that may be in the top k, indices and values side by side: the select then reads
// them in order instead of gathering from the input (a cache miss each).
class candidate_buffer {
public:
    // Room for `count` candidates; grows, never shrinks.
    void make_room(std::size_t count) {
        if (index_.size() < count) {
            index_.resize(count);
            value_.resize(count);
        }
    }
    std::size_t capacity() const { return index_.size(); }
    std::uint32_t* index() { return index_.data(); }
    float* value() { return value_.data(); }

    // Stores the elements of x whose key is at least t, in order, in the first `capacity` slots
    // (capacity <= this->capacity()); returns how many reach t, or capacity + 1 as soon as more than
    // capacity do.
    std::size_t collect_reaching(std::span<const float> x, std::uint32_t t, std::size_t capacity) {
        auto key_at = [x](std::size_t i) { return magnitude_key(x[i]); };
        std::uint32_t* index = index_.data();
        float* value = value_.data();
        std::size_t reached = 0;
        const std::size_t full = x.size() - x.size() % 64;
        for (std::size_t i = 0; i < full; i += 64) {
            std::uint64_t mask = match_mask(key_at, i, t, at_least(t));
            if (mask == 0) continue;
            if (reached + static_cast<std::size_t>(std::popcount(mask)) > capacity) return capacity + 1;
            for (; mask != 0; mask &= mask - 1) {
                const std::size_t j = i + static_cast<std::size_t>(std::countr_zero(mask));
                index[reached] = static_cast<std::uint32_t>(j);
                value[reached++] = x[j];
            }
        }
        for (std::size_t i = full; i < x.size(); ++i) {
            if (key_at(i) < t) continue;
            if (reached == capacity) return capacity + 1;
            index[reached] = static_cast<std::uint32_t>(i);
            value[reached++] = x[i];
        }
        return reached;
    }

private:
    std::vector<std::uint32_t> index_;
    std::vector<float> value_;
};

// The exact top k of x (1 <= k <= x.size() < 2^32) into out. The top-digit histogram says how many
// keys share or exceed the k-th largest's top digit; when they fit the scratch, a second pass
// collects them and the lower digits are selected among those alone. Otherwise (many equal
// magnitudes) the lower digits take two more passes over x, and emitting a third: four reads at most.
inline void select_exact(std::span<const float> x, std::size_t k, candidate_buffer& scratch, topk_body_writer& out) {
    const std::size_t n = x.size();
    auto key_at = [x](std::size_t i) { return magnitude_key(x[i]); };
    const auto hist = top_digit_histogram(n, key_at);
    std::size_t need = k;
    const std::uint32_t top = descend(hist.data(), 2048, need);
    const std::size_t reaching = k - need + hist[top];
    if (reaching <= scratch.capacity()) {
        scratch.collect_reaching(x, top << 20, reaching);
        const std::uint32_t* index = scratch.index();
        const float* value = scratch.value();
        auto value_at = [value](std::size_t j) { return value[j]; };
        const auto t = select_low_digits(
            reaching, [value](std::size_t j) { return magnitude_key(value[j]); }, top, need, hist[top]);
        emit_selected(
            reaching, [index](std::size_t j) { return index[j]; }, value_at, t, k, out);
    } else {
        const auto t = select_low_digits(n, key_at, top, need, hist[top]);
        emit_selected(
            n, [](std::size_t i) { return static_cast<std::uint32_t>(i); }, [x](std::size_t i) { return x[i]; }, t, k,
            out);
    }
}

// The top k among the first `count` candidates (k <= count), which must hold the input's top k.
inline void select_among(candidate_buffer& candidates, std::size_t count, std::size_t k, topk_body_writer& out) {
    const std::uint32_t* index = candidates.index();
    const float* value = candidates.value();
    const auto t = select_kth_key(count, k, [value](std::size_t j) { return magnitude_key(value[j]); });
    emit_selected(
        count, [index](std::size_t j) { return index[j]; }, [value](std::size_t j) { return value[j]; }, t, k, out);
}

// A threshold likely just below the k-th largest key, from Sample stratified positions (random.hpp):
// their r-th largest key, r = ceil(e + 3·sqrt(e) + 1) with e = Sample·k/n the expected rank of the
// k-th largest, so fewer than k elements reach it only if r of the sample fall in the top k, a
// three-standard-deviation event (Binomial(Sample, k/n); about 0.1% for the defaults). About n·r/Sample
// elements reach it; `capacity` leaves room for twice that.
template <std::size_t Sample>
class sampled_threshold {
    static_assert(Sample >= 1 && Sample <= (std::size_t{1} << 24), "Sample must be in [1, 2^24]");

public:
    explicit sampled_threshold(std::uint64_t seed) : key_(stream_key(seed, 0, 0)), keys_(Sample) {}

    // The j-th sampled position of an n-element input (n > Sample).
    std::size_t position(std::size_t j, std::size_t n) const { return stratified_index(key_, j, n, Sample); }

    struct bracket {
        std::uint32_t key;
        std::size_t capacity;
    };

    // For 1 <= k <= n and Sample < n.
    bracket operator()(std::span<const float> x, std::size_t k) {
        const std::size_t n = x.size();
        for (std::size_t j = 0; j < Sample; ++j) keys_[j] = magnitude_key(x[position(j, n)]);
        const double expected = static_cast<double>(Sample) * static_cast<double>(k) / static_cast<double>(n);
        const auto rank = std::min(Sample, static_cast<std::size_t>(std::ceil(expected + 3 * std::sqrt(expected) + 1)));
        std::nth_element(keys_.begin(), keys_.begin() + static_cast<std::ptrdiff_t>(rank - 1), keys_.end(),
                         std::greater<>{});
        return {keys_[rank - 1], std::min(n, 2 * ((n * rank + Sample - 1) / Sample) + 64)};
    }

private:
    std::uint64_t key_;
    std::vector<std::uint32_t> keys_;
};

// Selects the top k of x among the elements reaching a sampled threshold t (with n > Sample). Returns
// 0 when done, or how many reached t when fewer than k did: the scratch then holds them, and the
// caller decides. When more than t.capacity reach t, t is often the k-th largest key itself, shared
// by many elements (the zeros of a sparse tensor, a constant tensor): a second pass counts those
// strictly above t; fewer than k means the k-th largest is t, and the result is everything above it
// and the first equal ones. Failing that, the radix select runs on the input.
inline std::size_t select_sampled(std::span<const float> x, std::size_t k, std::uint32_t t, std::size_t capacity,
                                  candidate_buffer& scratch, topk_body_writer& out) {
    std::size_t reached = scratch.collect_reaching(x, t, capacity);
    if (reached <= capacity) {
        if (reached < k) return reached;
        select_among(scratch, reached, k, out);
        return 0;
    }
    reached = scratch.collect_reaching(x, t + 1, capacity);
    if (reached < k) {
        emit_selected(
            x.size(), [](std::size_t i) { return static_cast<std::uint32_t>(i); }, [x](std::size_t i) { return x[i]; },
            kth_key{t, k - reached}, k, out);
    } else if (reached <= capacity) {
        select_among(scratch, reached, k, out);
    } else {
        select_exact(x, k, scratch, out);
    }
    return 0;
}

inline void check_topk_size(std::size_t n, const char* compressor) {
    if (n > std::numeric_limits<std::uint32_t>::max()) {
        throw error(std::string(compressor) + "::encode: " + std::to_string(n) +
                    " elements, more than its 32-bit indices address (2^32 - 1)");
    }
}

// Payload: header {kind::topk, param_a = selector (0 exact, 1 sampled threshold), param_b/param_c =
// Fraction num/den, count = n, body = 8k}, body = k u32 indices, strictly increasing, then the k fp32
// values. Either decoder reads either selector's payloads: the format is the same.
template <class Fraction>
payload_header topk_header(std::uint16_t selector, std::size_t n, std::size_t k) {
    return {kind::topk,
            selector,
            static_cast<std::uint32_t>(Fraction::num),
            static_cast<std::uint32_t>(Fraction::den),
            n,
            8 * static_cast<std::uint64_t>(k)};
}

// The checks of a top-k header read for n values; returns k (shared with dtfm/cuda/topk.cuh).
template <class Fraction>
std::size_t topk_check_header(const payload_header& h, std::size_t n) {
    payload_header::expect(h.param_a <= 1, "selector", h.param_a);
    payload_header::expect(h.param_b == static_cast<std::uint64_t>(Fraction::num), "fraction numerator", h.param_b);
    payload_header::expect(h.param_c == static_cast<std::uint64_t>(Fraction::den), "fraction denominator", h.param_c);
    payload_header::expect(h.count <= std::numeric_limits<std::uint32_t>::max(), "count", h.count);
    const std::size_t k = fraction_count<Fraction>(n);
    payload_header::expect_body(h, 8 * static_cast<std::uint64_t>(k));
    return k;
}

// Checks a top-k payload for n values, its indices included; returns k.
template <class Fraction>
std::size_t topk_check(std::span<const std::byte> payload, std::size_t n) {
    const std::size_t k = topk_check_header<Fraction>(payload_header::read(payload, kind::topk, n), n);

    const std::byte* indices = payload.data() + payload_header::size;
    std::uint64_t lowest = 0;  // the smallest index the next entry may have
    for (std::size_t j = 0; j < k; ++j) {
        const std::uint32_t i = wire::load_le<std::uint32_t>(indices + 4 * j);
        if (i < lowest || i >= n) {
            throw wire_error(wire_error::reason::bad_value,
                             "top-k index " + std::to_string(i) + " at entry " + std::to_string(j) +
                                 (i >= n ? " is beyond the " + std::to_string(n) + " elements" : " does not increase"));
        }
        lowest = std::uint64_t{i} + 1;
    }
    return k;
}

// apply(out[index], value) for each of the k checked entries.
template <class Apply>
void topk_apply(std::span<const std::byte> payload, std::size_t k, std::span<float> out, Apply&& apply) {
    const std::byte* indices = payload.data() + payload_header::size;
    const std::byte* values = indices + 4 * k;
    for (std::size_t j = 0; j < k; ++j) {
        apply(out[wire::load_le<std::uint32_t>(indices + 4 * j)], std::bit_cast<float>(wire::load_le<std::uint32_t>(values + 4 * j)));
    }
}

// Every check runs before the first write to out, so a refused payload leaves out as it was.
template <class Fraction>
void topk_decode(std::span<const std::byte> payload, std::span<float> out) {
    const std::size_t k = topk_check<Fraction>(payload, out.size());
    std::fill(out.begin(), out.end(), 0.0f);
    topk_apply(payload, k, out, [](float& o, float v) { o = v; });
}

template <class Fraction, class Apply>
void topk_decode_scatter(std::span<const std::byte> payload, std::span<float> out, Apply&& apply) {
    topk_apply(payload, topk_check<Fraction>(payload, out.size()), out, apply);
}

}  // namespace detail

// Exact: the k largest |x| (NaN above +Inf; equal magnitudes: lower index first), indices
// ascending. The candidates reaching a sampled threshold hold the top k whenever there are at least k
// of them (every key above the k-th largest's is then among them), and are few: one pass collects
// them, and the radix select runs on those alone; a magnitude shared by many elements at the
// threshold (a sparse tensor's zeros) takes one more pass. Otherwise (a sample that overshot) the
// radix select runs on the input: four more reads at most. The sample decides only the cost, never
// the result. Scratch: about 3k candidates (index and value), made on the first call for each n.
template <class Fraction = std::ratio<1, 100>>
class topk {
    static_assert(std::endian::native == std::endian::little, "dtfm payloads are little-endian");
    static_assert(detail::valid_fraction<Fraction>, "Fraction must be in (0, 1] with a denominator below 2^31");

public:
    using compressor_concept = compressor_tag;
    using value_type = float;
    using memory_space = host_space;
    using fraction = Fraction;
    static constexpr std::uint16_t selector = 0;
    static constexpr std::size_t sample_size = 4096;

    // 0 for n = 0, else max(1, round(n·Fraction)) with halves rounded up; never above n.
    static constexpr std::size_t k_for(std::size_t n) { return detail::fraction_count<Fraction>(n); }

    std::size_t max_payload_bytes(std::size_t n) const { return payload_header::size + 8 * k_for(n); }

    std::size_t encode(std::span<const float> values, std::span<std::byte> payload) {
        const std::size_t n = values.size();
        detail::check_topk_size(n, "topk");
        const std::size_t bytes = max_payload_bytes(n);
        check_capacity(payload, bytes, "topk");
        const std::size_t k = k_for(n);
        detail::topk_header<Fraction>(selector, n, k).write(payload);
        if (k == 0) return bytes;
        std::byte* body = payload.data() + payload_header::size;
        detail::topk_body_writer out{body, body + 4 * k};
        if (n <= sample_size) {
            scratch_.make_room(n);
            detail::select_exact(values, k, scratch_, out);
            return bytes;
        }
        const auto t = threshold_(values, k);
        scratch_.make_room(t.capacity);
        if (detail::select_sampled(values, k, t.key, t.capacity, scratch_, out) > 0) {
            detail::select_exact(values, k, scratch_, out);
        }
        return bytes;
    }

    void decode(std::span<const std::byte> payload, std::span<float> out) {
        detail::topk_decode<Fraction>(payload, out);
    }

    // apply(out[i], value) at the kept positions only (decode without the zero-fill); same checks.
    template <class Apply>
    void decode_scatter(std::span<const std::byte> payload, std::span<float> out, Apply&& apply) {
        detail::topk_decode_scatter<Fraction>(payload, out, apply);
    }

private:
    detail::sampled_threshold<sample_size> threshold_{0};
    detail::candidate_buffer scratch_;
};

// Approximate: as topk, except when fewer than k elements reach the sampled threshold (about 0.1% of
// inputs of distinct magnitudes with the default Sample; recall is measured in the tests): then every
// element reaching it is kept and the shortfall is filled with the lowest-index elements below it,
// with no further pass over the input (recall >= reached/k). Same payload as topk.
template <class Fraction = std::ratio<1, 100>, std::size_t Sample = 4096>
class topk_approx {
    static_assert(std::endian::native == std::endian::little, "dtfm payloads are little-endian");
    static_assert(detail::valid_fraction<Fraction>, "Fraction must be in (0, 1] with a denominator below 2^31");

public:
    using compressor_concept = compressor_tag;
    using value_type = float;
    using memory_space = host_space;
    using fraction = Fraction;
    static constexpr std::uint16_t selector = 1;
    static constexpr std::size_t sample_size = Sample;

    // The seed picks the sampled positions (a fixed set for each n).
    explicit topk_approx(std::uint64_t seed = 0) : threshold_(seed) {}

    static constexpr std::size_t k_for(std::size_t n) { return detail::fraction_count<Fraction>(n); }

    std::size_t max_payload_bytes(std::size_t n) const { return payload_header::size + 8 * k_for(n); }

    // The j-th sampled position of an n-element input (n > Sample), for tests and diagnostics.
    std::size_t sample_position(std::size_t j, std::size_t n) const { return threshold_.position(j, n); }

    std::size_t encode(std::span<const float> values, std::span<std::byte> payload) {
        const std::size_t n = values.size();
        detail::check_topk_size(n, "topk_approx");
        const std::size_t bytes = max_payload_bytes(n);
        check_capacity(payload, bytes, "topk_approx");
        const std::size_t k = k_for(n);
        detail::topk_header<Fraction>(selector, n, k).write(payload);
        if (k == 0) return bytes;
        std::byte* body = payload.data() + payload_header::size;
        detail::topk_body_writer out{body, body + 4 * k};
        if (n <= Sample) {
            scratch_.make_room(n);
            detail::select_exact(values, k, scratch_, out);
            return bytes;
        }
        const auto t = threshold_(values, k);
        scratch_.make_room(t.capacity);
        const std::size_t reached = detail::select_sampled(values, k, t.key, t.capacity, scratch_, out);
        if (reached > 0) {
            // The candidates and the fill, merged in index order.
            const std::uint32_t* index = scratch_.index();
            const float* value = scratch_.value();
            std::size_t next = 0;
            for (std::size_t i = 0, fill = k - reached; fill > 0; ++i) {
                if (next < reached && index[next] == i) {
                    out.put(index[next], value[next]);
                    ++next;
                } else {
                    out.put(static_cast<std::uint32_t>(i), values[i]);
                    --fill;
                }
            }
            for (; next < reached; ++next) out.put(index[next], value[next]);
        }
        return bytes;
    }

    void decode(std::span<const std::byte> payload, std::span<float> out) {
        detail::topk_decode<Fraction>(payload, out);
    }

    // apply(out[i], value) at the kept positions only (decode without the zero-fill); same checks.
    template <class Apply>
    void decode_scatter(std::span<const std::byte> payload, std::span<float> out, Apply&& apply) {
        detail::topk_decode_scatter<Fraction>(payload, out, apply);
    }

private:
    detail::sampled_threshold<Sample> threshold_;
    detail::candidate_buffer scratch_;
};

static_assert(concepts::compressor<topk<>>);
static_assert(concepts::compressor<topk_approx<>>);

}  // namespace dtfm::compress
