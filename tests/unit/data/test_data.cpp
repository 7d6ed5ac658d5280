// dtfm::data: the Markov corpus's entropy rate matches the mean log-loss of its own samples under
// the true model; samples are a function of their id; sharding gives disjoint, stable ids; the
// text corpus keeps its held-out part apart; bad settings raise config_error.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "dtfm/data/markov.hpp"
#include "dtfm/data/sharding.hpp"
#include "dtfm/data/text_corpus.hpp"

using namespace dtfm::data;

TEST_CASE("markov_source: the entropy rate is the true model's mean log-loss on its samples", "[data]") {
    for (int order : {1, 2}) {
        const markov_source src(16, order, 3, 11);
        REQUIRE(src.entropy_rate() > 0.3);
        REQUIRE(src.entropy_rate() < std::log(16.0));
        // Estimate the transition probabilities from counts, then score fresh samples with them.
        const std::size_t contexts = order == 1 ? 16 : 256;
        std::vector<double> counts(contexts * 16, 0.0);
        std::vector<std::int32_t> seq(257);
        auto context_of = [&](std::size_t t) {
            return order == 1 ? static_cast<std::size_t>(seq[t]) : static_cast<std::size_t>(seq[t - 1] * 16 + seq[t]);
        };
        for (std::uint64_t id = 0; id < 2000; ++id) {
            src.sample(id, seq);
            for (std::size_t t = 1; t + 1 < seq.size(); ++t) counts[context_of(t) * 16 + static_cast<std::size_t>(seq[t + 1])] += 1;
        }
        double loss = 0, n = 0;
        for (std::uint64_t id = 100000; id < 101000; ++id) {
            src.sample(id, seq);
            for (std::size_t t = 1; t + 1 < seq.size(); ++t) {
                const std::size_t c = context_of(t);
                double row = 0;
                for (std::size_t k = 0; k < 16; ++k) row += counts[c * 16 + k];
                loss -= std::log((counts[c * 16 + static_cast<std::size_t>(seq[t + 1])] + 0.5) / (row + 8));
                n += 1;
            }
        }
        INFO("order " << order << ": entropy rate " << src.entropy_rate() << ", estimated " << loss / n);
        REQUIRE(std::abs(loss / n - src.entropy_rate()) < 0.02 * src.entropy_rate());
        REQUIRE(src.loss_floor(64) >= src.entropy_rate() - 1e-12);
        if (order == 1) REQUIRE(src.loss_floor(64) == Approx(src.entropy_rate()));
    }
}

TEST_CASE("markov_source: a sample is a function of its id", "[data]") {
    const markov_source a(32, 2, 4, 5), b(32, 2, 4, 5), other(32, 2, 4, 6);
    std::vector<std::int32_t> x(65), y(65), z(65), w(65);
    a.sample(42, x);
    b.sample(42, y);
    a.sample(43, z);
    other.sample(42, w);
    REQUIRE(x == y);
    REQUIRE(x != z);
    REQUIRE(x != w);
    for (auto t : x) REQUIRE((t >= 0 && t < 32));
    REQUIRE_THROWS_AS(markov_source(1, 2, 1, 0), dtfm::config_error);
    REQUIRE_THROWS_AS(markov_source(16, 4, 1, 0), dtfm::config_error);
    REQUIRE_THROWS_AS(markov_source(16, 2, 17, 0), dtfm::config_error);
}

TEST_CASE("sharding: replicas and micro-batches never share a sample within a step", "[data]") {
    const sharding s(1000, 2, 3, 4, 9);
    REQUIRE(s.global_batch() == 24);
    for (std::uint64_t step = 0; step < 50; ++step) {
        std::set<std::uint64_t> seen;
        for (int r = 0; r < 2; ++r)
            for (int m = 0; m < 3; ++m)
                for (auto id : s.ids(step, r, m)) {
                    REQUIRE(id < 1000);
                    REQUIRE(seen.insert(id).second);
                }
    }
    REQUIRE(s.ids(3, 1, 2) == sharding(1000, 2, 3, 4, 9).ids(3, 1, 2));
    for (auto id : sharding::held_out(10)) REQUIRE(id >= held_out_base);
    REQUIRE_THROWS_AS(sharding(10, 2, 3, 4), dtfm::config_error);
    REQUIRE_THROWS_AS(s.ids(0, 2, 0), dtfm::config_error);
}

TEST_CASE("text_corpus: bytes as tokens, the held-out tenth apart", "[data]") {
    const auto path = std::filesystem::temp_directory_path() / "dtfm_text_corpus_test.txt";
    {
        std::ofstream out(path, std::ios::binary);
        for (int i = 0; i < 1000; ++i) out << (i < 900 ? 'a' : 'z');
    }
    const auto corpus = text_corpus::load(path);
    std::filesystem::remove(path);
    REQUIRE(corpus.size() == 1000);
    std::vector<std::int32_t> window(50);
    corpus.sample(3, window, split::train);
    for (auto t : window) REQUIRE(t == 'a');
    corpus.sample(3, window, split::held_out);
    for (auto t : window) REQUIRE(t == 'z');
    std::vector<std::int32_t> too_long(200);
    REQUIRE_THROWS_AS(corpus.sample(0, too_long, split::held_out), dtfm::config_error);
    REQUIRE_THROWS_AS(text_corpus::load("/nonexistent/dtfm.txt"), dtfm::config_error);
}
