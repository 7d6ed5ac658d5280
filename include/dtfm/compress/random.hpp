// Counter-based random numbers for compressors: every draw is a pure function of (key, counter), with
// key = stream_key(seed, step, chunk), so host and device threads reproduce a mask or a stochastic
// choice in any order, with no sequential state. The mixer is the splitmix64 output function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ratio>

#include "dtfm/config.hpp"

namespace dtfm::compress {

// A bijection of 64-bit words whose outputs pass the usual statistical batteries even for
// consecutive inputs (splitmix64's finaliser).
DTFM_HOST_DEVICE std::uint64_t mix(std::uint64_t x) {
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// The key of one random stream. Each step is a bijection, so for a fixed seed distinct
// (step, chunk) pairs that differ in one field always give distinct keys.
DTFM_HOST_DEVICE std::uint64_t stream_key(std::uint64_t seed, std::uint64_t step, std::uint64_t chunk) {
    return mix(mix(mix(seed) ^ step) ^ chunk);
}

// The counter-th 64 random bits of stream `key`: splitmix64's output counter+1 from state key.
DTFM_HOST_DEVICE std::uint64_t draw(std::uint64_t key, std::uint64_t counter) {
    return mix(key + (counter + 1) * 0x9E3779B97F4A7C15ull);
}

// A float in [0, 1) from the top 24 bits: every value is a multiple of 2^-24, each equally likely.
DTFM_HOST_DEVICE float uniform01(std::uint64_t bits) { return static_cast<float>(bits >> 40) * 0x1p-24f; }

// An integer in [0, bound) by multiply-shift of the top 32 bits (no division). Each value has
// probability within bound / 2^32 (relative) of 1/bound: negligible for the strata it draws.
DTFM_HOST_DEVICE std::uint32_t below(std::uint64_t bits, std::uint32_t bound) {
    return static_cast<std::uint32_t>(((bits >> 32) * bound) >> 32);
}

// Stratified sampling: [0, n) cut into k strata [i·n/k, (i+1)·n/k) (floors; sizes ⌊n/k⌋ or ⌈n/k⌉)
// and one position drawn uniformly in stratum i. Positions increase with i; each position is
// chosen with probability 1 / (size of its stratum). Needs 1 ≤ k ≤ n < 2^32.
DTFM_HOST_DEVICE std::uint64_t stratum_begin(std::uint64_t i, std::uint64_t n, std::uint64_t k) { return i * n / k; }

DTFM_HOST_DEVICE std::uint32_t stratified_index(std::uint64_t key, std::uint64_t i, std::uint64_t n, std::uint64_t k) {
    const std::uint64_t begin = stratum_begin(i, n, k);
    const std::uint64_t size = stratum_begin(i + 1, n, k) - begin;
    return static_cast<std::uint32_t>(begin + below(draw(key, i), static_cast<std::uint32_t>(size)));
}

namespace detail {

// A compressor's Fraction: positive, at most 1, and small enough that its terms fit the 32-bit
// payload parameters and fraction_count cannot overflow.
template <class Fraction>
inline constexpr bool valid_fraction = Fraction::num > 0 &&
                                       Fraction::num <= Fraction::den&& Fraction::den < (std::intmax_t{1} << 31);

// How many of n elements a Fraction keeps: 0 for n = 0, else max(1, ⌊n·num/den + 1/2⌋) (round
// half up), which is at most n. Exact integer arithmetic for any n.
template <class Fraction>
constexpr std::size_t fraction_count(std::size_t n) {
    static_assert(valid_fraction<Fraction>, "Fraction must be in (0, 1] with a denominator below 2^31");
    if (n == 0) return 0;
    constexpr auto num = static_cast<std::uint64_t>(Fraction::num);
    constexpr auto den = static_cast<std::uint64_t>(Fraction::den);
    const std::uint64_t q = n / den;
    const std::uint64_t r = n % den;
    const std::uint64_t k = q * num + (2 * r * num + den) / (2 * den);
    return k == 0 ? 1 : static_cast<std::size_t>(k);
}

}  // namespace detail

}  // namespace dtfm::compress
