// collective::compressed_allreduce<C> on the in-process transport: exact with identity, identical
// results on every rank, error feedback at worker and server making the running mean of the
// estimates exact (cocktail, quantize, sign), the bytes it saves, and the same in many slices (a
// checkpoint of every slice's error restores bit-identically).
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <span>
#include <vector>

#include "dtfm/collective/compressed_allreduce.hpp"
#include "dtfm/compress/cocktail.hpp"
#include "dtfm/compress/identity.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/compress/sign.hpp"
#include "dtfm/train/checkpoint.hpp"
#include "dtfm/transport/inproc.hpp"
#include "../../support/rank_check.hpp"

using dtfm::collective::compressed_allreduce;
using dtfm::collective::options;
using dtfm::transport::inproc;
using dtfm::transport::run_inproc;
using namespace std::chrono_literals;
namespace compress = dtfm::compress;

namespace {

float input(int rank, std::size_t i) { return static_cast<float>(std::cos(0.1 * static_cast<double>(i) * (rank + 1)) + 0.25 * rank); }

double mean_input(int p, std::size_t i) {
    double s = 0;
    for (int r = 0; r < p; ++r) s += input(r, i);
    return s / p;
}

// Runs `steps` all-reduces of the same input on p ranks and returns the largest gap between the
// running mean of the estimates and the true average, after each of the given step counts.
template <class C>
std::vector<double> running_mean_gaps(int p, std::size_t n, std::vector<int> checkpoints,
                                      std::size_t slice_bytes = options{}.slice_bytes) {
    std::vector<double> gaps(checkpoints.size(), 0.0);
    std::mutex m;
    run_inproc(p, [&](inproc& t) {
        compressed_allreduce<C> c(options{.tag = 0, .timeout = 20s, .slice_bytes = slice_bytes});
        std::vector<double> total(n, 0.0);
        std::vector<float> x(n);
        std::size_t next = 0;
        for (int step = 1; step <= checkpoints.back(); ++step) {
            for (std::size_t i = 0; i < n; ++i) x[i] = input(t.rank(), i);
            c.allreduce(t, std::span<float>(x)).wait();
            for (std::size_t i = 0; i < n; ++i) total[i] += x[i];
            if (step == checkpoints[next]) {
                double gap = 0;
                for (std::size_t i = 0; i < n; ++i) gap = std::max(gap, std::abs(total[i] / step - mean_input(p, i)));
                std::lock_guard lock(m);
                gaps[next] = std::max(gaps[next], gap);
                ++next;
            }
        }
    });
    return gaps;
}

}  // namespace

TEST_CASE("compressed_allreduce satisfies the collective concept", "[compressed_allreduce]") {
    STATIC_REQUIRE(dtfm::concepts::collective<compressed_allreduce<compress::cocktail<>>, inproc>);
    STATIC_REQUIRE(std::same_as<compressed_allreduce<compress::error_feedback<compress::sign<>>>::compressor_type, compress::sign<>>);
}

TEST_CASE("compressed_allreduce with identity is an exact average", "[compressed_allreduce]") {
    for (int p = 1; p <= 8; ++p) {
        for (std::size_t n : {std::size_t{3}, std::size_t{8}, std::size_t{1001}}) {
            std::vector<std::vector<float>> out(static_cast<std::size_t>(p));
            run_inproc(p, [&](inproc& t) {
                compressed_allreduce<compress::identity> c(options{.tag = 0, .timeout = 10s});
                std::vector<float> x(n);
                for (std::size_t i = 0; i < n; ++i) x[i] = input(t.rank(), i);
                c.allreduce(t, std::span<float>(x)).wait();
                for (std::size_t i = 0; i < n; ++i) DTFM_RANK_REQUIRE(std::abs(x[i] - mean_input(p, i)) <= 1e-5);
                out[static_cast<std::size_t>(t.rank())] = x;
            });
            for (auto& o : out) REQUIRE(o == out[0]);
        }
    }
}

TEST_CASE("compressed_allreduce leaves every rank with the same estimate", "[compressed_allreduce]") {
    for (int p : {2, 3, 5}) {
        std::vector<std::vector<float>> out(static_cast<std::size_t>(p));
        run_inproc(p, [&](inproc& t) {
            compressed_allreduce<compress::cocktail<>> c(options{.tag = 0, .timeout = 10s});
            std::vector<float> x(5000);
            for (int step = 0; step < 3; ++step) {
                for (std::size_t i = 0; i < x.size(); ++i) x[i] = input(t.rank(), i) * static_cast<float>(step + 1);
                c.allreduce(t, std::span<float>(x)).wait();
            }
            out[static_cast<std::size_t>(t.rank())] = x;
        });
        for (auto& o : out) REQUIRE(o == out[0]);
    }
}

TEST_CASE("compressed_allreduce: error feedback makes the running mean converge (cocktail)", "[compressed_allreduce]") {
    const auto gaps = running_mean_gaps<compress::cocktail<>>(4, 4000, {50, 400, 1600});
    INFO("gaps after 50, 400, 1600 steps: " << gaps[0] << ", " << gaps[1] << ", " << gaps[2]);
    REQUIRE(gaps[1] < gaps[0] / 3);
    REQUIRE(gaps[2] < gaps[1] / 2);
    REQUIRE(gaps[2] < 0.1);  // without error feedback the gap would not shrink at all
}

TEST_CASE("compressed_allreduce: error feedback makes the running mean converge (quantize, sign)", "[compressed_allreduce]") {
    const auto q = running_mean_gaps<compress::quantize<2>>(3, 3001, {10, 100, 1000});
    INFO("quantize<2>: " << q[0] << ", " << q[1] << ", " << q[2]);
    REQUIRE(q[2] < q[0] / 20);
    REQUIRE(q[2] < 2e-3);
    const auto s = running_mean_gaps<compress::sign<>>(4, 2048, {10, 100, 1000});
    INFO("sign: " << s[0] << ", " << s[1] << ", " << s[2]);
    REQUIRE(s[1] < s[0] / 2);
    REQUIRE(s[2] < s[1] / 2);
    REQUIRE(s[2] < 0.05);
}

TEST_CASE("compressed_allreduce with cocktail sends at least 50x fewer bytes", "[compressed_allreduce]") {
    std::vector<double> ratios(4);
    run_inproc(4, [&](inproc& t) {
        compressed_allreduce<compress::cocktail<>> c(options{.tag = 0, .timeout = 10s});
        std::vector<float> x(1 << 18);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = input(t.rank(), i);
        c.allreduce(t, std::span<float>(x)).wait();
        ratios[static_cast<std::size_t>(t.rank())] = c.sent().ratio();
    });
    for (double r : ratios) REQUIRE(r >= 50);
}

TEST_CASE("compressed_allreduce handles buffers smaller than the rank count", "[compressed_allreduce]") {
    run_inproc(5, [&](inproc& t) {
        compressed_allreduce<compress::quantize<8>> c(options{.tag = 0, .timeout = 10s});
        std::vector<float> x(3, static_cast<float>(t.rank()));
        c.allreduce(t, std::span<float>(x)).wait();
        for (float v : x) DTFM_RANK_REQUIRE(std::abs(v - 2.0f) < 0.05f);
        std::vector<float> other(4, 1.0f);
        DTFM_RANK_REQUIRE_THROWS_AS(c.allreduce(t, std::span<float>(other)).wait(), dtfm::error);
        c.reset();
        c.allreduce(t, std::span<float>(other)).wait();
        for (float v : other) DTFM_RANK_REQUIRE(std::abs(v - 1.0f) < 0.01f);
    });
}

TEST_CASE("compressed_allreduce raises timeout_error when a server never answers", "[compressed_allreduce]") {
    run_inproc(3, [&](inproc& t) {
        if (t.rank() == 1) return;
        compressed_allreduce<compress::quantize<4>> c(options{.tag = 0, .timeout = 200ms});
        std::vector<float> x(100, 1.0f);
        const auto start = std::chrono::steady_clock::now();
        DTFM_RANK_REQUIRE_THROWS_AS(c.allreduce(t, std::span<float>(x)).wait(), dtfm::timeout_error);
        DTFM_RANK_REQUIRE(std::chrono::steady_clock::now() - start < 2 * 200ms + 200ms);
    });
}

TEST_CASE("compressed_allreduce in slices is exact with identity and the same everywhere with cocktail", "[compressed_allreduce]") {
    for (int p : {2, 3, 4}) {
        for (std::size_t n : {std::size_t{7}, std::size_t{1001}, std::size_t{5000}}) {
            std::vector<std::vector<float>> out(static_cast<std::size_t>(p));
            run_inproc(p, [&](inproc& t) {
                // 64 values a slice: up to 27 slices a segment, the last ones a value shorter.
                const options o{.tag = 0, .timeout = 10s, .slice_bytes = 64 * sizeof(float)};
                compressed_allreduce<compress::identity> exact(o);
                compressed_allreduce<compress::cocktail<>> cocktail(options{.tag = 8, .timeout = 10s, .slice_bytes = o.slice_bytes});
                std::vector<float> x(n);
                for (std::size_t i = 0; i < n; ++i) x[i] = input(t.rank(), i);
                exact.allreduce(t, std::span<float>(x)).wait();
                DTFM_RANK_REQUIRE(exact.slices() == std::max<std::size_t>(1, ((n + p - 1) / p + 63) / 64));
                for (std::size_t i = 0; i < n; ++i) DTFM_RANK_REQUIRE(std::abs(x[i] - mean_input(p, i)) <= 1e-5);
                for (int step = 0; step < 3; ++step) {
                    for (std::size_t i = 0; i < n; ++i) x[i] = input(t.rank(), i) * static_cast<float>(step + 1);
                    cocktail.allreduce(t, std::span<float>(x)).wait();
                }
                out[static_cast<std::size_t>(t.rank())] = x;
            });
            for (auto& o : out) REQUIRE(o == out[0]);
        }
    }
}

TEST_CASE("compressed_allreduce in slices: error feedback makes the running mean converge", "[compressed_allreduce]") {
    // 4000 values on 4 ranks in slices of 100 values: 10 slices a segment, each with its own errors.
    const auto gaps = running_mean_gaps<compress::cocktail<>>(4, 4000, {50, 400, 1600}, 400);
    INFO("gaps after 50, 400, 1600 steps: " << gaps[0] << ", " << gaps[1] << ", " << gaps[2]);
    REQUIRE(gaps[1] < gaps[0] / 3);
    REQUIRE(gaps[2] < gaps[1] / 2);
    REQUIRE(gaps[2] < 0.1);
}

TEST_CASE("compressed_allreduce in slices restores every slice's error from a checkpoint", "[compressed_allreduce]") {
    const int p = 3;
    const std::size_t n = 3000;
    const options o{.tag = 0, .timeout = 10s, .slice_bytes = 256};
    std::vector<std::vector<float>> whole(p), resumed(p);
    run_inproc(p, [&](inproc& t) {
        auto step_input = [&](std::vector<float>& x, int step) {
            for (std::size_t i = 0; i < n; ++i) x[i] = input(t.rank(), i) * static_cast<float>(step % 3 + 1);
        };
        std::vector<float> x(n);
        dtfm::train::checkpoint saved;
        {
            compressed_allreduce<compress::cocktail<>> c(o);
            for (int step = 0; step < 6; ++step) {
                if (step == 3) {
                    dtfm::train::checkpoint_saver s(saved, "c/");
                    c.serialize(s);
                }
                step_input(x, step);
                c.allreduce(t, std::span<float>(x)).wait();
            }
            whole[static_cast<std::size_t>(t.rank())] = x;
        }
        compressed_allreduce<compress::cocktail<>> c(o);
        dtfm::train::checkpoint_loader l(saved, "c/");
        c.serialize(l);
        DTFM_RANK_REQUIRE(c.step() == 3);
        for (int step = 3; step < 6; ++step) {
            step_input(x, step);
            c.allreduce(t, std::span<float>(x)).wait();
        }
        resumed[static_cast<std::size_t>(t.rank())] = x;
        DTFM_RANK_REQUIRE(c.slices() == 16);  // 1000 values a segment, 64 a slice
        // A checkpoint restores only into a call of the same size and slicing.
        compressed_allreduce<compress::cocktail<>> other(options{.tag = 8, .timeout = 10s, .slice_bytes = 2048});
        other.serialize(l);
        DTFM_RANK_REQUIRE_THROWS_AS(other.allreduce(t, std::span<float>(x)).wait(), dtfm::error);
    });
    for (int r = 0; r < p; ++r) REQUIRE(resumed[static_cast<std::size_t>(r)] == whole[static_cast<std::size_t>(r)]);
}

TEST_CASE("compressed_allreduce in slices raises timeout_error when a server never answers", "[compressed_allreduce]") {
    run_inproc(3, [&](inproc& t) {
        compressed_allreduce<compress::quantize<4>> c(options{.tag = 0, .timeout = 200ms, .slice_bytes = 64});
        std::vector<float> x(3000, 1.0f);
        if (t.rank() == 1) return;  // never joins
        const auto start = std::chrono::steady_clock::now();
        DTFM_RANK_REQUIRE_THROWS_AS(c.allreduce(t, std::span<float>(x)).wait(), dtfm::timeout_error);
        DTFM_RANK_REQUIRE(std::chrono::steady_clock::now() - start < 2 * 200ms + 200ms);
    });
}
