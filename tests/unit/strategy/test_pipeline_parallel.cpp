// strategy::pipeline_parallel on the in-process transport, with the toy model of
// tests/support/toy_stage.hpp: GPipe and 1F1B orders; 2- and 4-stage pipelines give the one-stage
// loss and gradients with identity compressors; AC-SGD's delta<quantize<8>> forward and
// quantize<8> backward stay close and send far fewer bytes; warm-up iterations are exact.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "dtfm/compress/delta.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/data/markov.hpp"
#include "dtfm/schedule/gpipe.hpp"
#include "dtfm/schedule/one_f_one_b.hpp"
#include "dtfm/strategy/pipeline_parallel.hpp"
#include "dtfm/transport/inproc.hpp"
#include "../../support/rank_check.hpp"
#include "../../support/toy_stage.hpp"

using namespace dtfm;
using dtfm::test::toy_config;
using dtfm::test::toy_stage;
using dtfm::transport::inproc;
using dtfm::transport::run_inproc;
using namespace std::chrono_literals;

namespace {

constexpr int micro_batch = 3, microbatches = 4;

// Micro-batch m of iteration `it`: sample ids, tokens and next-token targets.
struct batch_source {
    const data::markov_source& src;
    toy_config c;
    std::uint64_t it = 0;
    std::vector<std::vector<std::uint64_t>> ids;
    std::vector<std::vector<std::int32_t>> tokens, targets;

    strategy::microbatch operator()(int m) {
        const auto mm = static_cast<std::size_t>(m);
        ids.resize(microbatches), tokens.resize(microbatches), targets.resize(microbatches);
        ids[mm].clear(), tokens[mm].clear(), targets[mm].clear();
        std::vector<std::int32_t> seq(static_cast<std::size_t>(c.context) + 1);
        for (int i = 0; i < micro_batch; ++i) {
            const std::uint64_t id = (it * microbatches + mm) * micro_batch + static_cast<std::uint64_t>(i);
            src.sample(id % 24, seq);  // 24 distinct samples: later iterations revisit them
            ids[mm].push_back(id % 24);
            tokens[mm].insert(tokens[mm].end(), seq.begin(), seq.end() - 1);
            targets[mm].insert(targets[mm].end(), seq.begin() + 1, seq.end());
        }
        return {ids[mm], tokens[mm], targets[mm]};
    }
};

// A delta needs its cache budget; the others are default-constructed.
template <class C>
C make() {
    if constexpr (std::is_default_constructible_v<C>) return C();
    else return C(std::size_t{1} << 20);
}

struct result {
    std::vector<double> losses;     // per iteration, from the last stage
    std::vector<float> gradients;   // the whole model's, stage after stage, of the last iteration
    std::uint64_t payload = 0, values = 0;
};

template <class Schedule, class Fwd = compress::identity, class Bwd = compress::identity>
result train(int stages, int iterations, int warmup = 0) {
    const toy_config c;
    const data::markov_source src(c.vocab, 1, 3, 5);
    result out;
    std::vector<std::vector<float>> grads(static_cast<std::size_t>(stages));
    std::vector<double> losses(static_cast<std::size_t>(iterations));
    std::vector<std::uint64_t> payload(static_cast<std::size_t>(stages)), values(static_cast<std::size_t>(stages));
    run_inproc(stages, [&](inproc& t) {
        const int slots = Schedule::in_flight(t.rank(), stages, microbatches);
        toy_stage stage(c, t.rank(), stages, micro_batch, slots);
        strategy::pipeline_parallel<Schedule, Fwd, Bwd> pp(make<Fwd>, make<Bwd>, strategy::pipeline_options{.tag = 0, .timeout = 10s, .warmup_iterations = warmup});
        batch_source source{src, c, 0, {}, {}, {}};
        for (int it = 0; it < iterations; ++it) {
            stage.zero_gradients();
            source.it = static_cast<std::uint64_t>(it);
            const double loss = pp.run(t, stage, microbatches, source);
            if (stage.last()) losses[static_cast<std::size_t>(it)] = loss;
            // A plain SGD step, so later iterations see new activations for the same samples.
            for (std::size_t i = 0; i < stage.parameters().size(); ++i) stage.parameters()[i] -= 0.05f * stage.gradients()[i];
        }
        const auto r = static_cast<std::size_t>(t.rank());
        grads[r].assign(stage.gradients().begin(), stage.gradients().end());
        payload[r] = pp.sent().payload_bytes();
        values[r] = pp.sent().value_bytes();
    });
    out.losses = losses;
    for (auto& g : grads) out.gradients.insert(out.gradients.end(), g.begin(), g.end());
    for (int s = 0; s < stages; ++s) out.payload += payload[static_cast<std::size_t>(s)], out.values += values[static_cast<std::size_t>(s)];
    return out;
}

void require_close(const result& a, const result& b, double tolerance) {
    REQUIRE(a.losses.size() == b.losses.size());
    for (std::size_t i = 0; i < a.losses.size(); ++i) REQUIRE(a.losses[i] == Approx(b.losses[i]).epsilon(tolerance));
    REQUIRE(a.gradients.size() == b.gradients.size());
    for (std::size_t i = 0; i < a.gradients.size(); ++i) REQUIRE(a.gradients[i] == Approx(b.gradients[i]).margin(tolerance));
}

}  // namespace

TEST_CASE("schedules: GPipe and 1F1B run every forward before its backward", "[schedule]") {
    for (int stages : {1, 2, 4}) {
        for (int m : {1, 3, 8}) {
            for (int s = 0; s < stages; ++s) {
                for (const auto& ops : {schedule::gpipe{}.ops(s, stages, m), schedule::one_f_one_b{}.ops(s, stages, m)}) {
                    REQUIRE(ops.size() == 2 * static_cast<std::size_t>(m));
                    std::vector<int> state(static_cast<std::size_t>(m), 0);
                    for (auto op : ops) {
                        auto& st = state[static_cast<std::size_t>(op.microbatch)];
                        REQUIRE(st == (op.pass == pipeline_pass::forward ? 0 : 1));
                        ++st;
                    }
                }
                // 1F1B holds at most S − s micro-batches between their forward and backward.
                int live = 0, most = 0;
                for (auto op : schedule::one_f_one_b{}.ops(s, stages, m)) {
                    live += op.pass == pipeline_pass::forward ? 1 : -1;
                    most = std::max(most, live);
                }
                REQUIRE(most == schedule::one_f_one_b::in_flight(s, stages, m));
            }
        }
    }
    const auto ops = schedule::one_f_one_b{}.ops(0, 2, 3);
    const std::vector<pipeline_op> expect{{pipeline_pass::forward, 0}, {pipeline_pass::forward, 1}, {pipeline_pass::backward, 0},
                                          {pipeline_pass::forward, 2}, {pipeline_pass::backward, 1}, {pipeline_pass::backward, 2}};
    REQUIRE(ops == expect);
    REQUIRE_THROWS_AS(schedule::gpipe{}.ops(2, 2, 1), dtfm::config_error);
    REQUIRE_THROWS_AS(schedule::one_f_one_b{}.ops(0, 2, 0), dtfm::config_error);
}

TEST_CASE("pipeline_parallel: 2 and 4 stages give the one-stage loss and gradients", "[pipeline_parallel]") {
    const auto one = train<schedule::gpipe>(1, 3);
    for (int stages : {2, 4}) {
        INFO(stages << " stages");
        require_close(train<schedule::gpipe>(stages, 3), one, 1e-5);
        require_close(train<schedule::one_f_one_b>(stages, 3), one, 1e-5);
    }
}

TEST_CASE("pipeline_parallel: AC-SGD compression stays close and sends far fewer bytes", "[pipeline_parallel]") {
    using fwd = compress::delta<compress::quantize<8>>;
    using bwd = compress::quantize<8>;
    const auto exact = train<schedule::one_f_one_b>(2, 6);
    const auto compressed = train<schedule::one_f_one_b, fwd, bwd>(2, 6);
    for (std::size_t i = 0; i < exact.losses.size(); ++i) REQUIRE(compressed.losses[i] == Approx(exact.losses[i]).epsilon(0.01));
    INFO("bytes: compressed " << compressed.payload << ", values " << compressed.values << ", exact " << exact.payload);
    REQUIRE(compressed.payload * 2 < exact.payload);

    // Warm-up iterations send full precision: with every iteration warm, the result is exact.
    const auto warm = train<schedule::one_f_one_b, fwd, bwd>(2, 6, 6);
    require_close(warm, exact, 1e-6);
}

TEST_CASE("pipeline_parallel rejects a model part on the wrong rank", "[pipeline_parallel]") {
    run_inproc(2, [&](inproc& t) {
        toy_stage whole(toy_config{}, 0, 1, 1, 1);  // first and last, on a 2-stage pipeline
        strategy::pipeline_parallel<schedule::gpipe> pp;
        auto source = [](int) { return strategy::microbatch{}; };
        DTFM_RANK_REQUIRE_THROWS_AS(pp.run(t, whole, 1, source), dtfm::config_error);
        DTFM_RANK_REQUIRE_THROWS_AS(pp.run(t, whole, 0, source), dtfm::config_error);
    });
}
