// collective::buckets: tensors grouped under the byte cap in ready order, each bucket reduced as
// soon as it is full (while later tensors are still coming), averages copied back; misuse raises.
#include <catch2/catch.hpp>

#include <chrono>
#include <span>
#include <vector>

#include "dtfm/collective/buckets.hpp"
#include "dtfm/collective/compressed_allreduce.hpp"
#include "dtfm/collective/ring_allreduce.hpp"
#include "dtfm/compress/identity.hpp"
#include "dtfm/transport/inproc.hpp"
#include "../../support/rank_check.hpp"

using namespace dtfm::collective;
using dtfm::transport::inproc;
using dtfm::transport::run_inproc;
using namespace std::chrono_literals;

TEST_CASE("buckets group tensors under the byte cap in ready order", "[buckets]") {
    const std::vector<std::size_t> sizes{10, 10, 30, 5, 100, 1};
    buckets<ring_allreduce<float>> b(sizes, 25 * sizeof(float));
    REQUIRE(b.count() == 5);  // {10,10} {30} {5} {100} {1}
    REQUIRE(b.bucket_of(0) == 0);
    REQUIRE(b.bucket_of(1) == 0);
    REQUIRE(b.bucket_of(2) == 1);
    REQUIRE(b.bucket_of(3) == 2);
    REQUIRE(b.bucket_of(4) == 3);
    REQUIRE(b.bucket_of(5) == 4);
    REQUIRE(b.flat(0).size() == 20);
    REQUIRE_THROWS_AS(buckets<ring_allreduce<float>>(sizes, 2), dtfm::config_error);
}

TEST_CASE("buckets average every tensor, each bucket started when it fills", "[buckets]") {
    for (int p : {1, 2, 3, 4}) {
        run_inproc(p, [&](inproc& t) {
            const std::vector<std::size_t> sizes{1000, 3, 700, 700, 2000, 17};
            buckets<compressed_allreduce<dtfm::compress::identity>> b(sizes, 4000 * sizeof(float),
                                                                      options{.tag = 100, .timeout = 10s});
            std::vector<std::vector<float>> tensors, out;
            for (std::size_t i = 0; i < sizes.size(); ++i) {
                tensors.emplace_back(sizes[i], static_cast<float>(t.rank() * 10 + static_cast<int>(i)));
                out.emplace_back(sizes[i], -1.0f);
            }
            for (int round = 0; round < 2; ++round) {
                for (std::size_t i = 0; i < sizes.size(); ++i) b.ready(t, i, tensors[i]);
                std::vector<std::span<float>> views(out.begin(), out.end());
                b.finish(views);
                const float mean_rank = static_cast<float>(p - 1) / 2.0f;
                for (std::size_t i = 0; i < sizes.size(); ++i)
                    for (float v : out[i]) DTFM_RANK_REQUIRE(std::abs(v - (mean_rank * 10 + static_cast<float>(i))) < 1e-4f);
            }
        });
    }
}

TEST_CASE("buckets reject a wrong size, a tensor given twice and a missing one", "[buckets]") {
    run_inproc(1, [&](inproc& t) {
        const std::vector<std::size_t> sizes{4, 4};
        buckets<ring_allreduce<float>> b(sizes, 64);
        std::vector<float> four(4), three(3);
        std::vector<std::vector<float>> out(2, std::vector<float>(4));
        std::vector<std::span<float>> views(out.begin(), out.end());
        DTFM_RANK_REQUIRE_THROWS_AS(b.ready(t, 0, three), dtfm::error);
        DTFM_RANK_REQUIRE_THROWS_AS(b.ready(t, 7, four), dtfm::error);
        b.ready(t, 0, four);
        DTFM_RANK_REQUIRE_THROWS_AS(b.ready(t, 0, four), dtfm::error);
        DTFM_RANK_REQUIRE_THROWS_AS(b.finish(views), dtfm::error);
        b.ready(t, 1, four);
        b.finish(views);
    });
}
