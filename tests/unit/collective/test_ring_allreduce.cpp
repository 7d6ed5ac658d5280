// collective::ring_allreduce on the in-process transport: exact sums of integers and averages of
// floats for 1–8 ranks and sizes that do not divide evenly, sliced and not, asynchronous use,
// and a bounded wait when a peer never joins.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "dtfm/collective/ring_allreduce.hpp"
#include "dtfm/transport/inproc.hpp"
#include "../../support/rank_check.hpp"

using dtfm::collective::average;
using dtfm::collective::options;
using dtfm::collective::ring_allreduce;
using dtfm::collective::sum;
using dtfm::transport::inproc;
using dtfm::transport::run_inproc;
using namespace std::chrono_literals;

TEST_CASE("ring_allreduce satisfies the collective concept", "[ring_allreduce]") {
    STATIC_REQUIRE(dtfm::concepts::collective<ring_allreduce<float>, inproc>);
    STATIC_REQUIRE(dtfm::concepts::collective<ring_allreduce<std::int64_t, sum>, inproc>);
}

TEST_CASE("ring_allreduce sums integers exactly", "[ring_allreduce]") {
    for (int p = 1; p <= 8; ++p) {
        for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{5}, std::size_t{7}, std::size_t{1000}, std::size_t{4099}}) {
            for (std::size_t slice : {std::size_t{64}, std::size_t{1} << 20}) {
                run_inproc(p, [&](inproc& t) {
                    ring_allreduce<std::int64_t, sum> ring(options{.tag = 0, .timeout = 10s, .slice_bytes = slice});
                    std::vector<std::int64_t> data(n);
                    for (std::size_t i = 0; i < n; ++i) data[i] = t.rank() * 1000003 + static_cast<std::int64_t>(i) * (t.rank() + 1);
                    ring.allreduce(t, std::span<std::int64_t>(data)).wait();
                    const std::int64_t ranks = p;
                    for (std::size_t i = 0; i < n; ++i) {
                        const auto ii = static_cast<std::int64_t>(i);
                        DTFM_RANK_REQUIRE(data[i] == 1000003 * ranks * (ranks - 1) / 2 + ii * ranks * (ranks + 1) / 2);
                    }
                });
            }
        }
    }
}

TEST_CASE("ring_allreduce averages floats within rounding", "[ring_allreduce]") {
    for (int p : {1, 2, 3, 4, 5, 8}) {
        const std::size_t n = 10007;
        run_inproc(p, [&](inproc& t) {
            ring_allreduce<float> ring(options{.tag = 16, .timeout = 10s, .slice_bytes = 4096});
            std::vector<float> data(n);
            auto value = [](int r, std::size_t i) { return std::sin(0.37 * static_cast<double>(i) + r) * (1 + r); };
            for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<float>(value(t.rank(), i));
            for (int round = 0; round < 2; ++round) {  // the second call reuses the sized scratch
                std::vector<float> x = data;
                ring.allreduce(t, std::span<float>(x)).wait();
                for (std::size_t i = 0; i < n; ++i) {
                    double expect = 0;
                    for (int r = 0; r < p; ++r) expect += static_cast<float>(value(r, i));
                    expect /= p;
                    DTFM_RANK_REQUIRE(std::abs(x[i] - expect) <= 1e-5 * (1 + std::abs(expect)) * p);
                }
            }
        });
    }
}

TEST_CASE("ring_allreduce gives every rank bit-identical floats", "[ring_allreduce]") {
    std::vector<std::vector<float>> out(4);
    run_inproc(4, [&](inproc& t) {
        ring_allreduce<double> unused;  // other instantiations coexist
        (void)unused;
        ring_allreduce<float> ring(options{.tag = 0, .timeout = 10s, .slice_bytes = 1000});
        std::vector<float> data(3001);
        for (std::size_t i = 0; i < data.size(); ++i) data[i] = 1.0f / static_cast<float>(i + 1 + static_cast<std::size_t>(t.rank()));
        ring.allreduce(t, std::span<float>(data)).wait();
        out[static_cast<std::size_t>(t.rank())] = data;
    });
    for (int r = 1; r < 4; ++r) REQUIRE(out[static_cast<std::size_t>(r)] == out[0]);
}

TEST_CASE("ring_allreduce runs in the background while the caller computes", "[ring_allreduce]") {
    run_inproc(3, [&](inproc& t) {
        ring_allreduce<float> ring(options{.tag = 0, .timeout = 10s, .slice_bytes = 1 << 16});
        std::vector<float> a(1 << 18, static_cast<float>(t.rank())), b(1 << 10, 1.0f);
        auto first = ring.allreduce(t, std::span<float>(a));
        auto second = ring.allreduce(t, std::span<float>(b));  // queued behind the first
        double busy = 0;
        for (int i = 0; i < 1000; ++i) busy += std::sqrt(static_cast<double>(i));
        DTFM_RANK_REQUIRE(busy > 0);
        DTFM_RANK_REQUIRE(second.wait_for(10s));
        DTFM_RANK_REQUIRE(first.test());  // calls finish in order
        first.wait();
        for (float v : a) DTFM_RANK_REQUIRE(v == 1.0f);
        for (float v : b) DTFM_RANK_REQUIRE(v == 1.0f);
    });
}

TEST_CASE("ring_allreduce raises timeout_error when a peer never joins", "[ring_allreduce]") {
    run_inproc(3, [&](inproc& t) {
        if (t.rank() == 2) return;  // rank 2 is gone
        ring_allreduce<float> ring(options{.tag = 0, .timeout = 200ms, .slice_bytes = 1 << 20});
        std::vector<float> data(300, 1.0f);
        const auto start = std::chrono::steady_clock::now();
        auto op = ring.allreduce(t, std::span<float>(data));
        DTFM_RANK_REQUIRE_THROWS_AS(op.wait(), dtfm::timeout_error);
        DTFM_RANK_REQUIRE(std::chrono::steady_clock::now() - start < 2 * 200ms + 200ms);
    });
}

TEST_CASE("ring_allreduce rejects unusable options", "[ring_allreduce]") {
    REQUIRE_THROWS_AS(ring_allreduce<float>(options{.tag = dtfm::message_tag::max_id}), dtfm::config_error);
    REQUIRE_THROWS_AS(ring_allreduce<float>(options{.tag = 0, .timeout = 0s}), dtfm::config_error);
    REQUIRE_THROWS_AS(ring_allreduce<float>(options{.tag = 0, .timeout = 1s, .slice_bytes = 0}), dtfm::config_error);
}
