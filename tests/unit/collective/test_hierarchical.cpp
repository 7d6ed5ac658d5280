// collective::hierarchical on the in-process transport: the exact average over ranks for uneven
// regions (identity between leaders), one estimate on every rank with cocktail between leaders,
// region ids from names, and a region map that does not fit the transport.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "dtfm/collective/hierarchical.hpp"
#include "dtfm/compress/identity.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/transport/inproc.hpp"
#include "../../support/rank_check.hpp"

using namespace dtfm::collective;
using dtfm::transport::inproc;
using dtfm::transport::run_inproc;
using namespace std::chrono_literals;
namespace compress = dtfm::compress;

namespace {

float value(int rank, std::size_t i) { return static_cast<float>(std::sin(0.3 * static_cast<double>(i)) * (rank + 1) + rank); }

using exact_between = hierarchical<ring_allreduce<float>, compressed_allreduce<compress::identity>>;

}  // namespace

TEST_CASE("hierarchical satisfies the collective concept", "[hierarchical]") {
    STATIC_REQUIRE(dtfm::concepts::collective<hierarchical<>, inproc>);
}

TEST_CASE("region_ids numbers names by first appearance", "[hierarchical]") {
    const std::vector<std::string> names{"us", "eu", "us", "asia", "eu"};
    REQUIRE(region_ids(names) == std::vector<int>{0, 1, 0, 2, 1});
}

TEST_CASE("hierarchical with exact links averages over ranks, not regions", "[hierarchical]") {
    const std::vector<std::vector<int>> maps{{0}, {0, 1}, {0, 0, 1}, {0, 1, 1, 1}, {2, 0, 2, 1, 0}, {0, 0, 0, 1, 1, 2, 2, 2}};
    for (const auto& map : maps) {
        const int p = static_cast<int>(map.size());
        std::vector<std::vector<float>> out(map.size());
        run_inproc(p, [&](inproc& t) {
            exact_between h(map, ring_allreduce<float>(options{.tag = 0, .timeout = 10s, .slice_bytes = 256}),
                            compressed_allreduce<compress::identity>(options{.tag = 8, .timeout = 10s}),
                            options{.tag = 16, .timeout = 10s, .slice_bytes = 512});
            std::vector<float> x(1000);
            for (int round = 0; round < 2; ++round) {
                for (std::size_t i = 0; i < x.size(); ++i) x[i] = value(t.rank(), i);
                h.allreduce(t, std::span<float>(x)).wait();
            }
            for (std::size_t i = 0; i < x.size(); ++i) {
                double expect = 0;
                for (int r = 0; r < p; ++r) expect += value(r, i);
                expect /= p;
                DTFM_RANK_REQUIRE(std::abs(x[i] - expect) < 1e-4 * (1 + std::abs(expect)));
            }
            out[static_cast<std::size_t>(t.rank())] = x;
        });
        for (auto& o : out) REQUIRE(o == out[0]);
    }
}

TEST_CASE("hierarchical with compressed links gives every rank the same estimate", "[hierarchical]") {
    const std::vector<int> map{0, 0, 1, 1, 1, 2};
    std::vector<std::vector<float>> out(map.size());
    run_inproc(6, [&](inproc& t) {
        hierarchical<ring_allreduce<float>, compressed_allreduce<compress::quantize<8>>> h(
            map, ring_allreduce<float>(options{.tag = 0, .timeout = 10s}),
            compressed_allreduce<compress::quantize<8>>(options{.tag = 8, .timeout = 10s}), options{.tag = 16, .timeout = 10s});
        DTFM_RANK_REQUIRE(h.regions() == 3);
        std::vector<float> x(777);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = value(t.rank(), i);
        h.allreduce(t, std::span<float>(x)).wait();
        for (std::size_t i = 0; i < x.size(); ++i) {
            double expect = 0;
            for (int r = 0; r < 6; ++r) expect += value(r, i);
            DTFM_RANK_REQUIRE(std::abs(x[i] - expect / 6) < 0.05);
        }
        out[static_cast<std::size_t>(t.rank())] = x;
    });
    for (auto& o : out) REQUIRE(o == out[0]);
}

TEST_CASE("hierarchical rejects region maps that do not fit", "[hierarchical]") {
    REQUIRE_THROWS_AS(hierarchical<>(std::vector<int>{}), dtfm::config_error);
    REQUIRE_THROWS_AS(hierarchical<>(std::vector<int>{0, -1}), dtfm::config_error);
    run_inproc(2, [&](inproc& t) {
        hierarchical<> h(std::vector<int>{0, 0, 1});
        std::vector<float> x(4);
        DTFM_RANK_REQUIRE_THROWS_AS(h.allreduce(t, std::span<float>(x)).wait(), dtfm::config_error);
    });
}
