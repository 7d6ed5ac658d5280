// dtfm_bench_compress: encode and decode throughput of every compressor on one core, for 1M and
// 16M fp32 values, against memcpy of the same 4n bytes in the same run (the claim is the ratio).
// Each row also reports `ratio`: input bytes ÷ payload bytes.
#include <benchmark/benchmark.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <random>
#include <span>
#include <vector>

#include "dtfm/compress/cast.hpp"
#include "dtfm/compress/cocktail.hpp"
#include "dtfm/compress/error_feedback.hpp"
#include "dtfm/compress/identity.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/compress/randomk.hpp"
#include "dtfm/compress/sign.hpp"
#include "dtfm/compress/topk.hpp"

namespace {

constexpr std::size_t small = std::size_t{1} << 20;
constexpr std::size_t large = std::size_t{1} << 24;

// Gradient-like input: Gaussian with a few large outliers, generated once and touched before
// any timing (a first touch of fresh pages costs more than the work measured on some machines).
const std::vector<float>& input(std::size_t n) {
    static std::vector<float> values = [] {
        std::vector<float> v(large);
        std::mt19937 rng(12345);
        std::normal_distribution<float> gauss(0.0f, 1.0f);
        for (auto& x : v) x = gauss(rng);
        for (std::size_t i = 0; i < v.size(); i += 997) v[i] *= 20.0f;
        return v;
    }();
    (void)n;
    return values;
}

// The baseline copies the 4n bytes to where a payload body goes (after its 32-byte header), as
// identity's encode does: a destination at the same offset within a page as the source would
// make the copy slower (4 KiB aliasing) and every ratio look better than it is.
void bm_memcpy(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto& in = input(n);
    std::vector<std::byte> out(32 + n * sizeof(float), std::byte{1});
    for (auto _ : state) {
        std::memcpy(out.data() + 32, in.data(), n * sizeof(float));
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(n * sizeof(float)));
}

template <class Make>
void bm_encode(benchmark::State& state, Make make) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto values = std::span<const float>(input(n)).first(n);
    auto c = make();
    std::vector<std::byte> payload(c.max_payload_bytes(n), std::byte{0});
    std::size_t bytes = c.encode(values, payload);  // warm up: size scratch state once
    for (auto _ : state) {
        bytes = c.encode(values, payload);
        benchmark::DoNotOptimize(payload.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(n * sizeof(float)));
    state.counters["ratio"] = static_cast<double>(n * sizeof(float)) / static_cast<double>(bytes);
}

template <class Make>
void bm_decode(benchmark::State& state, Make make) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto values = std::span<const float>(input(n)).first(n);
    auto encoder = make();
    auto decoder = make();
    std::vector<std::byte> payload(encoder.max_payload_bytes(n));
    const std::size_t bytes = encoder.encode(values, payload);
    const auto received = std::span<const std::byte>(payload).first(bytes);
    std::vector<float> out(n, 0.0f);
    decoder.decode(received, out);
    for (auto _ : state) {
        decoder.decode(received, out);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(n * sizeof(float)));
    state.counters["ratio"] = static_cast<double>(n * sizeof(float)) / static_cast<double>(bytes);
}

// Error feedback's encode keeps a residual between calls: from the second call on (the warm-up
// sizes it), each iteration encodes the input plus the previous call's residual, as in training.
template <class Run>
void register_one(const char* name, const char* what, std::size_t n, Run run) {
    benchmark::RegisterBenchmark((std::string("compress/") + name + "/" + what).c_str(), run)
        ->Arg(static_cast<std::int64_t>(n))
        ->Unit(benchmark::kMicrosecond);
}

template <class Make>
void register_encode(const char* name, Make make) {
    for (std::size_t n : {small, large}) register_one(name, "encode", n, [make](benchmark::State& s) { bm_encode(s, make); });
}

template <class Make>
void register_pair(const char* name, Make make) {
    for (std::size_t n : {small, large}) {
        register_one(name, "encode", n, [make](benchmark::State& s) { bm_encode(s, make); });
        register_one(name, "decode", n, [make](benchmark::State& s) { bm_decode(s, make); });
    }
}

// This program is built -march=native, where cast<fp16> may take the target's conversion
// instructions (cast.hpp) instead of the portable loops the unit tests check: before measuring,
// check that it gives the portable conversion's bits for every fp16 pattern, and for every top
// half of an fp32 pattern with low halves that make each rounding case (ties, sticky bits, the
// largest round-down) at every result exponent, subnormals included. A mismatch is a library bug:
// say so and stop.
bool fp16_matches_portable() {
    constexpr std::uint32_t lows[] = {0x0000, 0x0001, 0x0FFF, 0x1000, 0x1001, 0x1FFF, 0x2000, 0x2001, 0x3000,
                                      0x4000, 0x6000, 0x7FFF, 0x8000, 0x8001, 0xA000, 0xC000, 0xE000, 0xFFFF};
    constexpr std::size_t count = std::size(lows) << 16;
    dtfm::compress::cast<dtfm::compress::fp16> c;
    std::vector<float> values(count + 1);
    for (std::size_t i = 0; i < count; ++i) {
        values[i] = std::bit_cast<float>(static_cast<std::uint32_t>((i % 65536) << 16 | lows[i / 65536]));
    }
    std::vector<std::byte> payload(c.max_payload_bytes(count + 1));
    std::vector<float> decoded(count + 1);
    // Both alignments of the input and the output, so the scalar head and tail loops take part.
    for (std::size_t skip : {0, 1}) {
        const auto in = std::span<const float>(values).subspan(skip, count);
        c.encode(in, payload);
        for (std::size_t i = 0; i < count; ++i) {
            std::uint16_t got;
            std::memcpy(&got, payload.data() + 32 + 2 * i, 2);
            if (got != dtfm::compress::fp32_to_fp16(in[i])) {
                std::fprintf(stderr, "cast<fp16>::encode of %08x gives %04x, fp32_to_fp16 %04x\n",
                             std::bit_cast<std::uint32_t>(in[i]), got, dtfm::compress::fp32_to_fp16(in[i]));
                return false;
            }
        }
        // Every fp16 pattern (many times over), decoded from a payload made by hand.
        for (std::size_t i = 0; i < count; ++i) {
            const auto h = static_cast<std::uint16_t>(i);
            std::memcpy(payload.data() + 32 + 2 * i, &h, 2);
        }
        const auto out = std::span<float>(decoded).subspan(skip, count);
        c.decode(std::span<const std::byte>(payload).first(c.max_payload_bytes(count)), out);
        for (std::size_t i = 0; i < count; ++i) {
            const auto want = std::bit_cast<std::uint32_t>(dtfm::compress::fp16_to_fp32(static_cast<std::uint16_t>(i)));
            if (std::bit_cast<std::uint32_t>(out[i]) != want) {
                std::fprintf(stderr, "cast<fp16>::decode of %04zx gives %08x, fp16_to_fp32 %08x\n", i % 65536,
                             std::bit_cast<std::uint32_t>(out[i]), want);
                return false;
            }
        }
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    if (!fp16_matches_portable()) return EXIT_FAILURE;
    (void)input(large);
    for (std::size_t n : {small, large}) {
        benchmark::RegisterBenchmark("compress/memcpy", bm_memcpy)
            ->Arg(static_cast<std::int64_t>(n))
            ->Unit(benchmark::kMicrosecond);
    }
    register_pair("identity", [] { return dtfm::compress::identity{}; });
    register_pair("fp16", [] { return dtfm::compress::cast<dtfm::compress::fp16>{}; });
    register_pair("bf16", [] { return dtfm::compress::cast<dtfm::compress::bf16>{}; });
    register_pair("q8", [] { return dtfm::compress::quantize<8>{}; });
    register_pair("q4", [] { return dtfm::compress::quantize<4>{}; });
    register_pair("q2", [] { return dtfm::compress::quantize<2>{}; });
    register_pair("q1", [] { return dtfm::compress::quantize<1>{}; });
    register_pair("sign", [] { return dtfm::compress::sign<>{}; });
    register_pair("topk_1pct", [] { return dtfm::compress::topk<std::ratio<1, 100>>{}; });
    register_pair("topk_1pct_approx", [] { return dtfm::compress::topk_approx<std::ratio<1, 100>>{}; });
    register_pair("randomk_1pct", [] { return dtfm::compress::randomk<std::ratio<1, 100>>{}; });
    // CocktailSGD's setting: a random 10% subset, its top 20%, 4-bit absmax blocks of 256.
    register_pair("cocktail", [] { return dtfm::compress::cocktail<>{}; });
    // The sender's side of compressed_allreduce: encode plus error feedback's residual update.
    register_encode("error_feedback_cocktail", [] { return dtfm::compress::error_feedback<dtfm::compress::cocktail<>>{}; });
    register_encode("error_feedback_topk_1pct", [] { return dtfm::compress::error_feedback<dtfm::compress::topk<>>{}; });
    register_encode("error_feedback_q4", [] { return dtfm::compress::error_feedback<dtfm::compress::quantize<4>>{}; });

    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
