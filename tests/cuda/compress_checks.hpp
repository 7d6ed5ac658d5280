// The CUDA compressors against the host compressors, byte for byte: the same payload from the same
// input and seed, the same decoded values (bit patterns) from the same payload, and the same typed
// refusals of malformed payloads, which leave the output untouched. Included by test_compress.cu
// (nvcc, a GPU) and by test_compress_cpp.cpp (g++, Thrust's CPP system: the same kernels' bodies run
// on the host, so the algorithms are tested without a GPU).
#pragma once

#include <thrust/copy.h>
#include <thrust/device_vector.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "check_support.hpp"
#include "dtfm/compress/cocktail.hpp"
#include "dtfm/compress/delta.hpp"
#include "dtfm/compress/error_feedback.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/compress/randomk.hpp"
#include "dtfm/compress/sign.hpp"
#include "dtfm/compress/topk.hpp"
#include "dtfm/cuda/cocktail.cuh"
#include "dtfm/cuda/delta.cuh"
#include "dtfm/cuda/error_feedback.cuh"
#include "dtfm/cuda/quantize.cuh"
#include "dtfm/cuda/randomk.cuh"
#include "dtfm/cuda/sign.cuh"
#include "dtfm/cuda/topk.cuh"

namespace checks {

// Normal values off zero in places, with ±0, ±Inf and NaN where n allows.
inline std::vector<float> test_values(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, 2.0f);
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = d(rng) + static_cast<float>(i / 1000 % 3);
    if (n > 3000) {
        v[17] = -0.0f;
        v[1234] = std::numeric_limits<float>::infinity();
        v[2345] = -std::numeric_limits<float>::quiet_NaN();
    }
    return v;
}

// Sparse (mostly zeros: ties at the k-th largest) and constant inputs, for top-k.
inline std::vector<float> sparse_values(std::size_t n, std::uint32_t seed) {
    std::vector<float> v(n, 0.0f);
    std::mt19937 rng(seed);
    for (std::size_t i = 0; i < n / 200; ++i) v[rng() % n] = static_cast<float>(rng() % 7) - 3.0f;
    return v;
}

inline const std::size_t sizes[] = {0, 1, 13, 256, 1000, 70001};

// encode on both sides (twice: stateful compressors advance), compare bytes; decode the host's
// payload on the device, compare values.
template <class Host, class Device>
void same_as_host(Host& host, Device& device, const std::vector<float>& x, const std::string& name) {
    const std::size_t n = x.size();
    const std::string what = name + " n=" + std::to_string(n);
    expect(host.max_payload_bytes(n) == device.max_payload_bytes(n), what + ": max_payload_bytes");
    thrust::device_vector<float> dx(x.begin(), x.end());
    for (int round = 0; round < 2; ++round) {
        std::vector<std::byte> hp(host.max_payload_bytes(n));
        const std::size_t hb = host.encode(x, hp);
        thrust::device_vector<std::byte> dp(device.max_payload_bytes(n), std::byte{0x5A});
        const std::size_t db = device.encode(span_of(dx), span_of(dp));
        expect(hb == db, what + ": payload sizes");
        expect(to_host(dp) == hp, what + ": payload bytes, round " + std::to_string(round));

        std::vector<float> ho(n);
        host.decode(hp, ho);
        thrust::device_vector<std::byte> from_host(hp.begin(), hp.end());
        thrust::device_vector<float> dout(n, 7.0f);
        device.decode(span_of(from_host), span_of(dout));
        expect(same_bits(to_host(dout), ho), what + ": decoded values, round " + std::to_string(round));
    }
}

// A malformed payload is refused with dtfm::wire_error and the output keeps its values.
template <class Device>
void refuses(Device& device, std::vector<std::byte> payload, std::size_t n, const std::string& what) {
    thrust::device_vector<std::byte> dp(payload.begin(), payload.end());
    thrust::device_vector<float> dout(n, 7.0f);
    bool refused = false;
    try {
        device.decode(span_of(dp), span_of(dout));
    } catch (const dtfm::wire_error&) {
        refused = true;
    }
    expect(refused, what + ": refused with wire_error");
    const auto after = to_host(dout);
    bool untouched = true;
    for (float v : after) untouched = untouched && v == 7.0f;
    expect(untouched, what + ": output untouched");
}

template <class Host, class Device>
void malformed(Host& host, Device& device, std::size_t n, const std::string& name) {
    const auto x = test_values(n, 3);
    std::vector<std::byte> p(host.max_payload_bytes(n));
    host.encode(x, p);
    refuses(device, std::vector<std::byte>(p.begin(), p.end() - 1), n, name + " truncated");
    refuses(device, std::vector<std::byte>(p.begin(), p.begin() + 10), n, name + " shorter than a header");
    auto kind = p;
    kind[5] = std::byte{static_cast<unsigned char>(dtfm::compress::kind::identity)};
    refuses(device, kind, n, name + " other kind");
    auto count = p;
    count[16] = static_cast<std::byte>(static_cast<unsigned>(count[16]) ^ 1u);
    refuses(device, count, n, name + " other count");
    auto param = p;
    param[8] = static_cast<std::byte>(static_cast<unsigned>(param[8]) ^ 8u);
    refuses(device, param, n, name + " other parameter");
}

template <class Q>
void quantize_case(const std::string& name) {
    for (std::size_t n : sizes) {
        typename Q::host_type host(42);
        Q device(42);
        same_as_host(host, device, test_values(n, static_cast<std::uint32_t>(n) + 1), name);
    }
    typename Q::host_type host;
    Q device;
    malformed(host, device, 1000, name);
}

inline void quantize_checks() {
    using namespace dtfm::compress;
    quantize_case<dtfm::cuda::quantize<4>>("quantize<4>");
    quantize_case<dtfm::cuda::quantize<8>>("quantize<8>");
    quantize_case<dtfm::cuda::quantize<1, absmax, nearest, 64>>("quantize<1, absmax, nearest, 64>");
    quantize_case<dtfm::cuda::quantize<2, minmax, stochastic, 128>>("quantize<2, minmax, stochastic, 128>");
    quantize_case<dtfm::cuda::quantize<3, absmax, stochastic, 24>>("quantize<3, absmax, stochastic, 24>");
    quantize_case<dtfm::cuda::quantize<8, minmax, stochastic, 512>>("quantize<8, minmax, stochastic, 512>");
}

inline void sign_checks() {
    for (std::size_t n : sizes) {
        dtfm::compress::sign<> host;
        dtfm::cuda::sign<> device;
        same_as_host(host, device, test_values(n, 5), "sign<256>");
        dtfm::compress::sign<8> host8;
        dtfm::cuda::sign<8> device8;
        same_as_host(host8, device8, test_values(n, 6), "sign<8>");
    }
    dtfm::compress::sign<> host;
    dtfm::cuda::sign<> device;
    malformed(host, device, 1000, "sign");
}

inline void randomk_checks() {
    for (std::size_t n : sizes) {
        dtfm::compress::randomk<> host(9);
        dtfm::cuda::randomk<> device(9);
        host.set_context(3, 1);
        device.set_context(3, 1);
        same_as_host(host, device, test_values(n, 7), "randomk<1/100>");
        dtfm::compress::randomk<std::ratio<1, 3>, false> raw(2);
        dtfm::cuda::randomk<std::ratio<1, 3>, false> draw(2);
        same_as_host(raw, draw, test_values(n, 8), "randomk<1/3, unscaled>");
    }
    dtfm::compress::randomk<> host(9);
    dtfm::cuda::randomk<> device(9);
    malformed(host, device, 1000, "randomk");
    // A payload of another step: the ranks are out of step.
    std::vector<std::byte> p(host.max_payload_bytes(1000));
    host.set_context(4, 0);
    host.encode(test_values(1000, 1), p);
    refuses(device, p, 1000, "randomk of another step");
}

inline void topk_checks() {
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{100}, std::size_t{4096}, std::size_t{5000},
                          std::size_t{100000}}) {
        dtfm::compress::topk<> host;
        dtfm::cuda::topk<> device;
        same_as_host(host, device, test_values(n, 11), "topk<1/100>");
        same_as_host(host, device, sparse_values(n, 12), "topk<1/100> sparse");
        same_as_host(host, device, std::vector<float>(n, -2.5f), "topk<1/100> constant");
        dtfm::compress::topk<std::ratio<1, 5>> fifth;
        dtfm::cuda::topk<std::ratio<1, 5>> dfifth;
        same_as_host(fifth, dfifth, test_values(n, 13), "topk<1/5>");
    }
    {
        // Thrust's temporary storage is kept: encodes after the first of a size allocate nothing.
        dtfm::compress::topk<> host;
        dtfm::cuda::topk<> device;
        same_as_host(host, device, test_values(200000, 14), "topk<1/100> warm-up");
        const std::size_t blocks = device.temp_blocks();
        expect(blocks > 0, "topk: Thrust temporary storage comes from its allocator");
        for (std::uint32_t round = 0; round < 3; ++round) {
            same_as_host(host, device, test_values(200000, 15 + round), "topk<1/100> again");
        }
        expect(device.temp_blocks() == blocks, "topk: no new temporary storage after the first encode of a size");
    }
    dtfm::compress::topk<std::ratio<1, 10>> host;
    dtfm::cuda::topk<std::ratio<1, 10>> device;
    malformed(host, device, 1000, "topk");
    std::vector<std::byte> p(host.max_payload_bytes(1000));
    host.encode(test_values(1000, 2), p);
    auto beyond = p;
    std::uint32_t big = 1000;
    std::memcpy(beyond.data() + dtfm::compress::payload_header::size + 4 * 50, &big, 4);
    refuses(device, beyond, 1000, "topk index beyond n");
    auto repeated = p;
    std::memcpy(repeated.data() + dtfm::compress::payload_header::size + 4 * 51,
                repeated.data() + dtfm::compress::payload_header::size + 4 * 50, 4);
    refuses(device, repeated, 1000, "topk index repeated");
}

// Error feedback over a host compressor HostC and its CUDA twin DeviceC: the same payloads and
// residuals, step after step.
template <class HostC, class DeviceC>
void error_feedback_checks_of(const std::string& name) {
    const std::size_t n = 5000;
    dtfm::compress::error_feedback<HostC> host;
    dtfm::cuda::error_feedback<DeviceC> device;
    thrust::device_vector<std::byte> dp(device.max_payload_bytes(n));
    std::vector<std::byte> hp(host.max_payload_bytes(n));
    for (std::uint32_t step = 0; step < 3; ++step) {
        const auto g = test_values(n, 20 + step);
        thrust::device_vector<float> dg(g.begin(), g.end());
        host.encode(g, hp);
        device.encode(span_of(dg), span_of(dp));
        expect(to_host(dp) == hp, name + ": payload, step " + std::to_string(step));
        const auto r = device.residual();
        thrust::device_vector<float> dr(thrust::device_pointer_cast(r.data()),
                                        thrust::device_pointer_cast(r.data()) + static_cast<std::ptrdiff_t>(r.size()));
        const auto hr = host.residual();
        expect(same_bits(to_host(dr), std::vector<float>(hr.begin(), hr.end())),
               name + ": residual, step " + std::to_string(step));
    }
    thrust::device_vector<float> wrong(n + 1, 1.0f);
    bool threw = false;
    try {
        device.encode(span_of(wrong), span_of(dp));
    } catch (const dtfm::error&) {
        threw = true;
    }
    expect(threw, name + ": another tensor size throws");
}

inline void error_feedback_checks() {
    error_feedback_checks_of<dtfm::compress::quantize<2>, dtfm::cuda::quantize<2>>("error_feedback<quantize<2>>");
    error_feedback_checks_of<dtfm::compress::topk<>, dtfm::cuda::topk<>>("error_feedback<topk<>>");
    // The compressors holding Thrust scratch move, so the adaptors can take them by value.
    static_assert(std::is_move_constructible_v<dtfm::cuda::topk<>> && std::is_move_constructible_v<dtfm::cuda::cocktail<>>);
    dtfm::cuda::delta<dtfm::cuda::topk<>> delta_over_topk(1 << 20);
    dtfm::cuda::error_feedback<dtfm::cuda::cocktail<>> feedback_over_cocktail(dtfm::cuda::cocktail<>(5));
    (void)delta_over_topk;
    (void)feedback_over_cocktail;
}

inline void cocktail_checks() {
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{1000}, std::size_t{123457}}) {
        dtfm::compress::cocktail<> host(5);
        dtfm::cuda::cocktail<> device(5);
        host.set_context(2, 0);
        device.set_context(2, 0);
        same_as_host(host, device, test_values(n, 31), "cocktail<>");
    }
    dtfm::compress::cocktail<> host(5);
    dtfm::cuda::cocktail<> device(5);
    malformed(host, device, 100000, "cocktail");
    std::vector<std::byte> p(host.max_payload_bytes(100000));
    host.encode(test_values(100000, 3), p);
    auto bitmap = p;
    bitmap[dtfm::compress::payload_header::size + 16] ^= std::byte{0x01};  // one more or one fewer marked
    refuses(device, bitmap, 100000, "cocktail bitmap count");
}

inline void delta_checks() {
    const std::size_t n = 5000;  // above 3000: test_values holds −NaN and +Inf
    using host_delta = dtfm::compress::delta<dtfm::compress::quantize<4>>;
    using device_delta = dtfm::cuda::delta<dtfm::cuda::quantize<4>>;
    host_delta host_sender(1 << 20);
    host_delta host_receiver(1 << 20);
    device_delta sender(1 << 20);
    device_delta receiver(1 << 20);
    const std::uint64_t ids[] = {1, 1, 2, 1, 2, 2};
    for (std::size_t v = 0; v < std::size(ids); ++v) {
        const auto a = test_values(n, static_cast<std::uint32_t>(40 + v));
        const std::string what = "delta<quantize<4>> visit " + std::to_string(v);
        std::vector<std::byte> hp(host_sender.max_payload_bytes(n));
        host_sender.set_sample(ids[v]);
        hp.resize(host_sender.encode(a, hp));
        thrust::device_vector<float> da(a.begin(), a.end());
        thrust::device_vector<std::byte> dp(sender.max_payload_bytes(n));
        sender.set_sample(ids[v]);
        const std::size_t db = sender.encode(span_of(da), span_of(dp));
        auto device_bytes = to_host(dp);
        device_bytes.resize(db);
        expect(device_bytes == hp, what + ": payload bytes");

        std::vector<float> hout(n);
        host_receiver.set_sample(ids[v]);
        host_receiver.decode(hp, hout);
        thrust::device_vector<std::byte> from_host(hp.begin(), hp.end());
        thrust::device_vector<float> dout(n);
        receiver.set_sample(ids[v]);
        receiver.decode(span_of(from_host), span_of(dout));
        expect(same_bits(to_host(dout), hout), what + ": decoded m(id)");
    }
    // A delta for a sample this receiver never held: out of step.
    const auto a = test_values(n, 1);
    std::vector<std::byte> hp(host_sender.max_payload_bytes(n));
    host_sender.set_sample(1);
    hp.resize(host_sender.encode(a, hp));
    device_delta fresh(1 << 20);
    fresh.set_sample(1);
    std::vector<float> ones(n, 1.0f);
    thrust::device_vector<float> seed_values(ones.begin(), ones.end());
    thrust::device_vector<std::byte> scratch(fresh.max_payload_bytes(n));
    fresh.set_sample(7);
    fresh.encode(span_of(seed_values), span_of(scratch));  // shapes it; holds sample 7 only
    fresh.set_sample(1);
    refuses(fresh, hp, n, "delta for a sample not held");
}

inline int run_all() {
    quantize_checks();
    sign_checks();
    randomk_checks();
    topk_checks();
    error_feedback_checks();
    cocktail_checks();
    delta_checks();
    std::printf("%s (%d failures)\n", failures == 0 ? "all checks passed" : "some checks failed", failures);
    return failures == 0 ? 0 : 1;
}

}  // namespace checks
