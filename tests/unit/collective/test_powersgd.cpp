// collective::powersgd<Rank> on the in-process transport: low-rank inputs reproduced (warm start)
// and averaged exactly, the same result on every rank, error feedback making the running mean of
// the results converge on a full-rank input, small and 1-D blocks averaged exactly, layouts
// checked, traffic and ratio, and a bounded wait when a peer never joins.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <mutex>
#include <span>
#include <vector>

#include "dtfm/collective/powersgd.hpp"
#include "dtfm/transport/inproc.hpp"
#include "../../support/rank_check.hpp"

using dtfm::collective::matrix_shape;
using dtfm::collective::options;
using dtfm::collective::powersgd;
using dtfm::transport::inproc;
using dtfm::transport::run_inproc;
using namespace std::chrono_literals;

namespace {

double u(std::size_t i, int which) { return std::sin(0.7 * static_cast<double>(i) + 1.3 * which) + 0.2 * which; }
double v(std::size_t k, int which) { return std::cos(0.45 * static_cast<double>(k) * (which + 1)) - 0.1 * which; }

// A full-rank input, different on every rank.
float full(int rank, std::size_t i) {
    return static_cast<float>(std::sin(0.013 * static_cast<double>(i * i % 977) * (rank + 2)) + 0.3 * rank);
}

double max_abs_diff(std::span<const float> a, const std::vector<double>& b) {
    double d = 0;
    for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
    return d;
}

}  // namespace

TEST_CASE("powersgd satisfies the collective concept", "[powersgd]") {
    STATIC_REQUIRE(dtfm::concepts::collective<powersgd<1>, inproc>);
    STATIC_REQUIRE(dtfm::concepts::collective<powersgd<4>, inproc>);
}

TEST_CASE("powersgd reproduces a low-rank matrix that every rank holds", "[powersgd]") {
    // 60 × 40, rank 2, the same on all ranks; Rank 2 and 3 (a rank-deficient P must not break it).
    const std::size_t rows = 60, cols = 40, n = rows * cols;
    std::vector<double> a(n);
    for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t k = 0; k < cols; ++k) a[i * cols + k] = u(i, 0) * v(k, 0) + 0.5 * u(i, 1) * v(k, 1);
    auto check = [&](auto make) {
        run_inproc(3, [&](inproc& t) {
            auto c = make();
            for (int call = 0; call < 3; ++call) {
                std::vector<float> x(a.begin(), a.end());
                c.allreduce(t, std::span<float>(x)).wait();
                if (call >= 1) DTFM_RANK_REQUIRE(max_abs_diff(x, a) <= 1e-4);
            }
        });
    };
    check([] { return powersgd<2>({{rows, cols}}, options{.tag = 0, .timeout = 10s}); });
    check([] { return powersgd<3>({{rows, cols}}, options{.tag = 0, .timeout = 10s}); });
}

TEST_CASE("powersgd gives every rank bit-identical output", "[powersgd]") {
    for (int p : {2, 3, 5}) {
        std::vector<std::vector<float>> out(static_cast<std::size_t>(p));
        run_inproc(p, [&](inproc& t) {
            powersgd<2> c(options{.tag = 0, .timeout = 10s, .slice_bytes = 256});
            std::vector<float> x(1000);
            for (int call = 0; call < 3; ++call) {
                for (std::size_t i = 0; i < x.size(); ++i) x[i] = full(t.rank(), i + static_cast<std::size_t>(call));
                c.allreduce(t, std::span<float>(x)).wait();
            }
            out[static_cast<std::size_t>(t.rank())] = x;
        });
        for (auto& o : out) REQUIRE(o == out[0]);
    }
}

TEST_CASE("powersgd averages low-rank inputs exactly", "[powersgd]") {
    const std::size_t rows = 50, cols = 30, n = rows * cols;
    SECTION("rank 1: a shared column space, a different row vector on each rank") {
        const int p = 4;
        std::vector<double> mean(n, 0.0);
        for (int r = 0; r < p; ++r)
            for (std::size_t i = 0; i < n; ++i) mean[i] += u(i / cols, 0) * v(i % cols, r) / p;
        run_inproc(p, [&](inproc& t) {
            powersgd<1> c({{rows, cols}}, options{.tag = 0, .timeout = 10s});
            std::vector<float> x(n);
            for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<float>(u(i / cols, 0) * v(i % cols, t.rank()));
            c.allreduce(t, std::span<float>(x)).wait();
            DTFM_RANK_REQUIRE(max_abs_diff(x, mean) <= 1e-4);
        });
    }
    SECTION("rank 4: four ranks with a different rank-1 matrix each") {
        const int p = 4;
        std::vector<double> mean(n, 0.0);
        for (int r = 0; r < p; ++r)
            for (std::size_t i = 0; i < n; ++i) mean[i] += u(i / cols, r) * v(i % cols, r) / p;
        run_inproc(p, [&](inproc& t) {
            powersgd<4> c({{rows, cols}}, options{.tag = 0, .timeout = 10s});
            std::vector<float> x(n);
            for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<float>(u(i / cols, t.rank()) * v(i % cols, t.rank()));
            c.allreduce(t, std::span<float>(x)).wait();
            DTFM_RANK_REQUIRE(max_abs_diff(x, mean) <= 1e-4);
        });
    }
}

TEST_CASE("powersgd: error feedback makes the running mean converge on a full-rank input", "[powersgd]") {
    const int p = 3;
    const std::size_t n = 24 * 20;
    std::vector<double> mean(n, 0.0);
    for (int r = 0; r < p; ++r)
        for (std::size_t i = 0; i < n; ++i) mean[i] += static_cast<double>(full(r, i)) / p;
    const std::vector<int> checkpoints{10, 100, 400};
    std::vector<double> gaps(checkpoints.size(), 0.0);
    std::mutex m;
    run_inproc(p, [&](inproc& t) {
        powersgd<2> c({{24, 20}}, options{.tag = 0, .timeout = 10s});
        std::vector<double> total(n, 0.0);
        std::vector<float> x(n);
        std::size_t next = 0;
        for (int step = 1; step <= checkpoints.back(); ++step) {
            for (std::size_t i = 0; i < n; ++i) x[i] = full(t.rank(), i);
            c.allreduce_blocking(t, std::span<float>(x));
            for (std::size_t i = 0; i < n; ++i) total[i] += x[i];
            if (step == checkpoints[next]) {
                double gap = 0;
                for (std::size_t i = 0; i < n; ++i) gap = std::max(gap, std::abs(total[i] / step - mean[i]));
                std::lock_guard lock(m);
                gaps[next] = std::max(gaps[next], gap);
                ++next;
            }
        }
    });
    INFO("gaps after 10, 100, 400 calls: " << gaps[0] << ", " << gaps[1] << ", " << gaps[2]);
    REQUIRE(gaps[1] < gaps[0] / 4);
    REQUIRE(gaps[2] < gaps[1] / 2);
    REQUIRE(gaps[2] < 0.05);  // without error feedback it would level off at the rank-2 residual
}

TEST_CASE("powersgd averages small and 1-D blocks exactly", "[powersgd]") {
    // A bias vector, a 2 × 50 matrix (min ≤ Rank = 2), a compressed 40 × 30, a 1 × 7 row.
    const std::vector<matrix_shape> layout{{25, 1}, {2, 50}, {40, 30}, {1, 7}};
    const std::size_t n = 25 + 100 + 1200 + 7;
    const int p = 4;
    std::vector<double> mean(n, 0.0);
    for (int r = 0; r < p; ++r)
        for (std::size_t i = 0; i < n; ++i) mean[i] += static_cast<double>(full(r, i)) / p;
    run_inproc(p, [&](inproc& t) {
        powersgd<2> c(layout, options{.tag = 0, .timeout = 10s});
        std::vector<float> x(n);
        for (std::size_t i = 0; i < n; ++i) x[i] = full(t.rank(), i);
        c.allreduce(t, std::span<float>(x)).wait();
        auto exact = [&](std::size_t begin, std::size_t size) {
            for (std::size_t i = begin; i < begin + size; ++i) DTFM_RANK_REQUIRE(std::abs(x[i] - mean[i]) <= 1e-5);
        };
        exact(0, 125);
        exact(1325, 7);
        // The 40 × 30 block is compressed: 2·(40 + 30) values instead of 1200.
        DTFM_RANK_REQUIRE(max_abs_diff(std::span<const float>(x).subspan(125, 1200),
                                       std::vector<double>(mean.begin() + 125, mean.begin() + 1325)) > 1e-3);
        const auto sent = c.sent();
        DTFM_RANK_REQUIRE(sent.value_bytes == n * sizeof(float));
        DTFM_RANK_REQUIRE(sent.payload_bytes == (25 + 100 + 2 * 40 + 2 * 30 + 7) * sizeof(float));
    });
    REQUIRE(powersgd<2>(layout).compression_ratio(n) == Approx(1332.0 / 272.0));
}

TEST_CASE("powersgd default layout: one near-square zero-padded matrix", "[powersgd]") {
    // 1000 values: 32 columns, 32 rows (24 padding zeros); ratio 1000 / (4 · 64).
    REQUIRE(powersgd<4>().compression_ratio(1000) == Approx(1000.0 / 256.0));
    REQUIRE(powersgd<1>().compression_ratio(10000) == Approx(10000.0 / 200.0));
    REQUIRE(powersgd<4>().compression_ratio(10) == Approx(1.0));  // 4 × 3: min ≤ Rank, sent as is
    // A rank-1 pattern in a 32 × 32 view of 1000 values: the zeros padding the last row make it
    // rank 2, which Rank 2 reproduces.
    run_inproc(2, [&](inproc& t) {
        powersgd<2> c(options{.tag = 0, .timeout = 10s});
        std::vector<float> x(1000);
        for (int call = 0; call < 2; ++call) {
            for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(u(i / 32, 0) * v(i % 32, 0));
            c.allreduce(t, std::span<float>(x)).wait();
        }
        for (std::size_t i = 0; i < x.size(); ++i) DTFM_RANK_REQUIRE(std::abs(x[i] - u(i / 32, 0) * v(i % 32, 0)) <= 1e-4);
        DTFM_RANK_REQUIRE(c.sent().ratio() == Approx(1000.0 / 128.0));
    });
}

TEST_CASE("powersgd rejects a layout that does not cover the buffer", "[powersgd]") {
    REQUIRE_THROWS_AS(powersgd<1>(std::vector<matrix_shape>{{0, 3}}), dtfm::config_error);
    REQUIRE_THROWS_AS(powersgd<1>(options{.tag = dtfm::message_tag::max_id}), dtfm::config_error);
    REQUIRE_THROWS_AS(powersgd<1>({{10, 10}}).compression_ratio(99), dtfm::config_error);
    REQUIRE_THROWS_AS(powersgd<1>({{10, 10}}).compression_ratio(101), dtfm::config_error);
    run_inproc(2, [&](inproc& t) {
        powersgd<1> c({{10, 10}, {1, 5}}, options{.tag = 0, .timeout = 10s});
        std::vector<float> x(104, 1.0f);
        DTFM_RANK_REQUIRE_THROWS_AS(c.allreduce(t, std::span<float>(x)).wait(), dtfm::config_error);
        std::vector<float> y(105, 1.0f);
        c.allreduce(t, std::span<float>(y)).wait();
        for (float f : y) DTFM_RANK_REQUIRE(std::abs(f - 1.0f) <= 1e-5f);
        std::vector<float> z(106, 1.0f);
        DTFM_RANK_REQUIRE_THROWS_AS(c.allreduce(t, std::span<float>(z)).wait(), dtfm::error);
    });
}

TEST_CASE("powersgd raises timeout_error when a peer never joins", "[powersgd]") {
    run_inproc(3, [&](inproc& t) {
        if (t.rank() == 2) return;
        powersgd<2> c(options{.tag = 0, .timeout = 200ms});
        std::vector<float> x(400, 1.0f);
        const auto start = std::chrono::steady_clock::now();
        DTFM_RANK_REQUIRE_THROWS_AS(c.allreduce(t, std::span<float>(x)).wait(), dtfm::timeout_error);
        DTFM_RANK_REQUIRE(std::chrono::steady_clock::now() - start < 2 * 200ms + 200ms);
    });
}
