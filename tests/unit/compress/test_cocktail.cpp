// cocktail<>: the kept values are the top 20% by magnitude of a random 10% subset fixed by
// (seed, step, chunk), quantized to 4 bits; sizes are exact; malformed payloads are refused.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "dtfm/compress/cocktail.hpp"

using namespace dtfm::compress;

namespace {

std::vector<float> gaussian(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

struct encoded {
    std::vector<std::byte> payload;
    std::vector<float> decoded;
};

encoded round_trip(cocktail<>& enc, cocktail<>& dec, const std::vector<float>& x) {
    encoded e;
    e.payload.resize(enc.max_payload_bytes(x.size()));
    const auto n = enc.encode(x, e.payload);
    e.payload.resize(n);
    e.decoded.resize(x.size());
    dec.decode(e.payload, e.decoded);
    return e;
}

}  // namespace

TEST_CASE("cocktail keeps the top 20% of a random 10% subset, quantized", "[compress][cocktail]") {
    const std::size_t n = 100'000;
    const auto x = gaussian(n, 1);
    cocktail<> enc(7), dec(7);
    enc.set_context(3, 1);
    dec.set_context(3, 1);
    const auto e = round_trip(enc, dec, x);

    const std::size_t m = cocktail<>::subset_for(n);
    const std::size_t k = cocktail<>::kept_for(n);
    REQUIRE(m == 10'000);
    REQUIRE(k == 2'000);
    REQUIRE(e.payload.size() == enc.max_payload_bytes(n));

    // Reference: the same subset (randomk's positions for this context), its k largest magnitudes.
    randomk<std::ratio<1, 10>, false> subset(7);
    subset.set_context(3, 1);
    std::vector<std::uint32_t> pos(m);
    subset.positions(n, pos);
    std::vector<std::size_t> order(m);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return std::fabs(x[pos[a]]) > std::fabs(x[pos[b]]); });
    std::vector<bool> expected(n, false);
    for (std::size_t j = 0; j < k; ++j) expected[pos[order[j]]] = true;

    // 4-bit absmax blocks of 256: error at most half a step, step = 2·max|x| / 15 of the block.
    float largest = 0;
    for (std::size_t i = 0; i < n; ++i) largest = std::max(largest, std::fabs(x[i]));
    const float bound = largest / 15.0f + 1e-6f;
    std::size_t nonzero_outside = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (expected[i]) {
            REQUIRE(std::fabs(e.decoded[i] - x[i]) <= bound);
        } else {
            nonzero_outside += e.decoded[i] != 0.0f;
        }
    }
    REQUIRE(nonzero_outside == 0);
}

TEST_CASE("cocktail: compression ratio of the default configuration", "[compress][cocktail]") {
    cocktail<> c;
    const std::size_t n = std::size_t{1} << 20;
    const double ratio = static_cast<double>(4 * n) / static_cast<double>(c.max_payload_bytes(n));
    INFO("ratio " << ratio);
    REQUIRE(ratio > 150.0);  // about 4n / (n/80 bitmap + n/50 · 4 bits + scales)
    REQUIRE(ratio < 200.0);
}

TEST_CASE("cocktail: deterministic for a context, different across steps", "[compress][cocktail]") {
    const auto x = gaussian(5'000, 2);
    cocktail<> a(11), b(11), d(11);
    a.set_context(1, 0);
    b.set_context(1, 0);
    d.set_context(1, 0);
    const auto ea = round_trip(a, d, x);
    const auto eb = round_trip(b, d, x);
    REQUIRE(ea.payload == eb.payload);
    a.set_context(2, 0);
    d.set_context(2, 0);
    const auto ec = round_trip(a, d, x);
    REQUIRE(ec.decoded != ea.decoded);
}

TEST_CASE("cocktail: the subset drawn for a context is reused, also by copies, and redrawn after a move",
          "[compress][cocktail]") {
    const auto x = gaussian(5'000, 3);
    cocktail<> a(5), reference(5);
    a.set_context(3, 1);
    reference.set_context(3, 1);
    const auto first = round_trip(a, reference, x);
    const auto again = round_trip(a, reference, x);  // the cached draw
    REQUIRE(again.payload == first.payload);
    cocktail<> copy = a;
    REQUIRE(round_trip(copy, reference, x).payload == first.payload);
    cocktail<> moved = std::move(a);
    REQUIRE(round_trip(moved, reference, x).payload == first.payload);
    // The moved-from one keeps its context but not its positions: it must draw them again.
    std::vector<float> out(x.size());
    a.decode(first.payload, out);  // NOLINT(bugprone-use-after-move): a moved-from cocktail stays usable
    REQUIRE(out == first.decoded);
    REQUIRE(round_trip(a, reference, x).payload == first.payload);
}

TEST_CASE("cocktail: small and empty inputs", "[compress][cocktail]") {
    for (std::size_t n : {0u, 1u, 5u, 9u, 10u, 11u, 333u}) {
        const auto x = gaussian(n, 4);
        cocktail<> enc, dec;
        const auto e = round_trip(enc, dec, x);
        REQUIRE(e.payload.size() == enc.max_payload_bytes(n));
        std::size_t kept = 0;
        for (float v : e.decoded) kept += v != 0.0f;
        REQUIRE(kept <= cocktail<>::kept_for(n));
    }
}

TEST_CASE("cocktail refuses malformed payloads", "[compress][cocktail]") {
    using reason = dtfm::wire_error::reason;
    const auto x = gaussian(4'000, 5);
    cocktail<> enc(1);
    enc.set_context(9, 2);
    std::vector<std::byte> good(enc.max_payload_bytes(x.size()));
    enc.encode(x, good);
    auto why = [&](const std::vector<std::byte>& p, std::uint64_t step = 9, std::size_t n = 4'000) {
        cocktail<> dec(1);
        dec.set_context(step, 2);
        std::vector<float> out(n);
        try {
            dec.decode(p, out);
        } catch (const dtfm::wire_error& e) {
            return e.why();
        }
        FAIL("accepted a malformed payload");
        return reason::bad_kind;
    };
    REQUIRE(why(good, 8) == reason::bad_value);  // another step's payload
    REQUIRE(why(good, 9, 3'999) == reason::bad_length);
    REQUIRE(why(std::vector<std::byte>(good.begin(), good.end() - 1)) == reason::bad_length);
    REQUIRE(why(std::vector<std::byte>(good.begin(), good.begin() + 40)) == reason::bad_length);
    auto p = good;
    p[32 + 16] ^= std::byte{0x01};  // one bit more or less in the bitmap
    REQUIRE(why(p) == reason::bad_value);
    p = good;
    p[5] = static_cast<std::byte>(kind::topk);
    REQUIRE(why(p) == reason::bad_kind);
    // Every single-byte change decodes or is refused as a wire_error (ASan checks the bounds).
    for (std::size_t i = 0; i < good.size(); i += 7) {
        auto q = good;
        q[i] ^= std::byte{0x5A};
        cocktail<> dec(1);
        dec.set_context(9, 2);
        std::vector<float> out(4'000);
        try {
            dec.decode(q, out);
        } catch (const dtfm::wire_error&) {
        }
    }
}
