// The collectives under mpirun (2 and 4 processes) over transport::mpi: exact integer sums and
// float averages, compressed all-reduce with one estimate everywhere, hierarchical over two
// regions, gossip, PowerSGD, buckets, and data-parallel training over a throttled link.
#include <catch2/catch.hpp>

#include <mpi.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "dtfm/collective/buckets.hpp"
#include "dtfm/collective/compressed_allreduce.hpp"
#include "dtfm/collective/gossip.hpp"
#include "dtfm/collective/hierarchical.hpp"
#include "dtfm/collective/powersgd.hpp"
#include "dtfm/collective/ring_allreduce.hpp"
#include "dtfm/compress/cocktail.hpp"
#include "dtfm/compress/identity.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/strategy/data_parallel.hpp"
#include "dtfm/transport/mpi.hpp"
#include "dtfm/transport/throttled.hpp"
#include "../support/least_squares.hpp"
#include "../support/on_every_rank.hpp"
#include "../support/rank_check.hpp"

using namespace dtfm::collective;
using dtfm::test::on_every_rank;
using dtfm::transport::mpi;
using namespace std::chrono_literals;
namespace compress = dtfm::compress;

namespace {

float value(int rank, std::size_t i) { return static_cast<float>(std::cos(0.2 * static_cast<double>(i)) * (rank + 1) + 0.5 * rank); }

double mean_value(int p, std::size_t i) {
    double s = 0;
    for (int r = 0; r < p; ++r) s += value(r, i);
    return s / p;
}

// Every rank's buffer must equal rank 0's, bit for bit.
void require_same_everywhere(std::span<const float> x) {
    std::vector<float> root(x.begin(), x.end());
    MPI_Bcast(root.data(), static_cast<int>(root.size()), MPI_FLOAT, 0, MPI_COMM_WORLD);
    for (std::size_t i = 0; i < x.size(); ++i) DTFM_RANK_REQUIRE(root[i] == x[i]);
}

}  // namespace

TEST_CASE("mpi: ring_allreduce sums integers exactly and averages floats", "[mpi][collective]") {
    on_every_rank([] {
        mpi t;
        const std::int64_t p = t.size();
        for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{100003}}) {
            ring_allreduce<std::int64_t, sum> ints(options{.tag = 0, .timeout = 30s, .slice_bytes = 4096});
            std::vector<std::int64_t> a(n);
            for (std::size_t i = 0; i < n; ++i) a[i] = t.rank() * 1000 + static_cast<std::int64_t>(i);
            ints.allreduce(t, std::span<std::int64_t>(a)).wait();
            for (std::size_t i = 0; i < n; ++i) DTFM_RANK_REQUIRE(a[i] == 1000 * p * (p - 1) / 2 + p * static_cast<std::int64_t>(i));

            ring_allreduce<float> floats(options{.tag = 8, .timeout = 30s, .slice_bytes = 8192});
            std::vector<float> x(n);
            for (std::size_t i = 0; i < n; ++i) x[i] = value(t.rank(), i);
            floats.allreduce(t, std::span<float>(x)).wait();
            for (std::size_t i = 0; i < n; ++i) DTFM_RANK_REQUIRE(std::abs(x[i] - mean_value(t.size(), i)) < 1e-5);
            require_same_everywhere(x);
        }
    });
}

TEST_CASE("mpi: compressed_allreduce is exact with identity and the same everywhere with cocktail", "[mpi][collective]") {
    on_every_rank([] {
        mpi t;
        compressed_allreduce<compress::identity> exact(options{.tag = 0, .timeout = 30s});
        std::vector<float> x(5001);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = value(t.rank(), i);
        exact.allreduce(t, std::span<float>(x)).wait();
        for (std::size_t i = 0; i < x.size(); ++i) DTFM_RANK_REQUIRE(std::abs(x[i] - mean_value(t.size(), i)) < 1e-5);

        compressed_allreduce<compress::cocktail<>> cocktail(options{.tag = 8, .timeout = 30s});
        std::vector<float> y(1 << 16);
        for (int step = 0; step < 3; ++step) {
            for (std::size_t i = 0; i < y.size(); ++i) y[i] = value(t.rank(), i);
            cocktail.allreduce(t, std::span<float>(y)).wait();
            require_same_everywhere(y);
        }
        DTFM_RANK_REQUIRE(cocktail.sent().ratio() > 50);
    });
}

TEST_CASE("mpi: hierarchical over two regions averages over all ranks", "[mpi][collective]") {
    on_every_rank([] {
        mpi t;
        std::vector<int> regions(static_cast<std::size_t>(t.size()));
        for (std::size_t r = 0; r < regions.size(); ++r) regions[r] = r < regions.size() / 2 ? 0 : 1;
        hierarchical<ring_allreduce<float>, compressed_allreduce<compress::identity>> h(
            regions, ring_allreduce<float>(options{.tag = 0, .timeout = 30s}),
            compressed_allreduce<compress::identity>(options{.tag = 8, .timeout = 30s}), options{.tag = 16, .timeout = 30s});
        std::vector<float> x(3000);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = value(t.rank(), i);
        h.allreduce(t, std::span<float>(x)).wait();
        for (std::size_t i = 0; i < x.size(); ++i) DTFM_RANK_REQUIRE(std::abs(x[i] - mean_value(t.size(), i)) < 1e-4);
        require_same_everywhere(x);
    });
}

TEST_CASE("mpi: gossip keeps the mean and reaches consensus, PowerSGD agrees everywhere", "[mpi][collective]") {
    on_every_rank([] {
        mpi t;
        gossip<compress::quantize<8>, exponential_graph> g(compress::quantize<8>(), 0.8f, options{.tag = 0, .timeout = 30s});
        std::vector<float> x(512);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = value(t.rank(), i);
        for (int round = 0; round < 40; ++round) g.allreduce(t, std::span<float>(x)).wait();
        for (std::size_t i = 0; i < x.size(); ++i) DTFM_RANK_REQUIRE(std::abs(x[i] - mean_value(t.size(), i)) < 1e-2);

        powersgd<2> psgd(options{.tag = 8, .timeout = 30s});
        std::vector<float> m(40 * 40);
        for (std::size_t i = 0; i < m.size(); ++i) m[i] = value(t.rank(), i);
        psgd.allreduce(t, std::span<float>(m)).wait();
        require_same_everywhere(m);
    });
}

TEST_CASE("mpi: buckets reduce while later tensors are still coming", "[mpi][collective]") {
    on_every_rank([] {
        mpi t;
        const std::vector<std::size_t> sizes{5000, 10, 20000, 3};
        buckets<ring_allreduce<float>> b(sizes, 16 * 1024, options{.tag = 64, .timeout = 30s});
        std::vector<std::vector<float>> tensors, out;
        for (std::size_t i = 0; i < sizes.size(); ++i) {
            tensors.emplace_back(sizes[i], static_cast<float>(t.rank() + static_cast<int>(i)));
            out.emplace_back(sizes[i]);
        }
        for (std::size_t i = 0; i < sizes.size(); ++i) b.ready(t, i, tensors[i]);
        std::vector<std::span<float>> views(out.begin(), out.end());
        b.finish(views);
        const float mean_rank = static_cast<float>(t.size() - 1) / 2.0f;
        for (std::size_t i = 0; i < sizes.size(); ++i)
            for (float v : out[i]) DTFM_RANK_REQUIRE(v == mean_rank + static_cast<float>(i));
    });
}

TEST_CASE("mpi: data-parallel least squares with cocktail over a throttled link", "[mpi][collective][data_parallel]") {
    on_every_rank([] {
        mpi world;
        const int n = world.size();
        dtfm::transport::throttled<mpi> t(std::move(world), dtfm::transport::link_model::uniform(n, 0.5, 1.0));
        dtfm::test::least_squares_shard shard(4096, 4096, 8, t.rank(), 0.5);
        dtfm::strategy::data_parallel<compressed_allreduce, compress::cocktail<>> dp;
        dtfm::optim::sgd inner(dtfm::optim::sgd_options{.lr = 0.02f});
        std::vector<float> x(4096, 0.0f), g(4096);
        const double first = shard.loss_and_gradient(x, g);
        for (int s = 0; s < 200; ++s) {
            shard.loss_and_gradient(x, g);
            dp.step(t, std::span<float>(x), std::span<float>(g), inner);
        }
        const double last = shard.loss_and_gradient(x, g);
        DTFM_RANK_REQUIRE(last < 0.5 * first);
        require_same_everywhere(x);
    });
}
