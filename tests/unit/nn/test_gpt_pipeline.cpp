// The GPT through strategy::pipeline_parallel on in-process ranks: 2- and 4-stage pipelines
// (GPipe and 1F1B, identity compressors) give the one-stage loss and gradients within fp
// tolerance; with AC-SGD compression (delta<quantize<8>> forward, quantize<8> backward) the loss
// stays within 1 % of the exact one.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <span>
#include <type_traits>
#include <vector>

#include "dtfm/compress/delta.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/nn/gpt_stage.hpp"
#include "dtfm/schedule/gpipe.hpp"
#include "dtfm/schedule/one_f_one_b.hpp"
#include "dtfm/strategy/pipeline_parallel.hpp"
#include "dtfm/transport/inproc.hpp"

using namespace dtfm;
using namespace std::chrono_literals;

namespace {

nn::gpt_config config() { return {.vocab = 13, .context = 6, .d_model = 16, .heads = 2, .layers = 4, .seed = 5}; }

constexpr int micro_batch = 2, microbatches = 3;

struct result {
    double loss = 0;
    std::vector<float> gradients;  // stage after stage
};

template <class C>
C make() {
    if constexpr (std::is_default_constructible_v<C>) return C();
    else return C(std::size_t{1} << 20);
}

template <class Schedule, class Fwd = compress::identity, class Bwd = compress::identity>
result run(int stages) {
    const auto c = config();
    std::vector<std::vector<float>> grads(static_cast<std::size_t>(stages));
    double loss = 0;
    std::vector<std::uint64_t> ids{0, 1};
    std::vector<std::vector<std::int32_t>> tokens(microbatches), targets(microbatches);
    for (int m = 0; m < microbatches; ++m)
        for (std::size_t i = 0; i < micro_batch * c.context; ++i) {
            tokens[static_cast<std::size_t>(m)].push_back(static_cast<std::int32_t>((i * 5 + static_cast<std::size_t>(m)) % c.vocab));
            targets[static_cast<std::size_t>(m)].push_back(static_cast<std::int32_t>((i * 5 + static_cast<std::size_t>(m) + 1) % c.vocab));
        }
    std::mutex mu;
    transport::run_inproc(stages, [&](transport::inproc& t) {
        nn::gpt_stage stage(c, t.rank(), stages, micro_batch, microbatches);
        strategy::pipeline_parallel<Schedule, Fwd, Bwd> pp(make<Fwd>, make<Bwd>, strategy::pipeline_options{.tag = 0, .timeout = 20s});
        auto source = [&](int m) {
            return strategy::microbatch{ids, tokens[static_cast<std::size_t>(m)], targets[static_cast<std::size_t>(m)]};
        };
        stage.zero_gradients();
        const double l = pp.run(t, stage, microbatches, source);
        std::lock_guard lock(mu);
        if (stage.last()) loss = l;
        grads[static_cast<std::size_t>(t.rank())].assign(stage.gradients().begin(), stage.gradients().end());
    });
    result r{loss, {}};
    for (auto& g : grads) r.gradients.insert(r.gradients.end(), g.begin(), g.end());
    return r;
}

}  // namespace

TEST_CASE("gpt pipeline: 2 and 4 stages give the one-stage loss and gradients", "[gpt_pipeline]") {
    const auto one = run<schedule::gpipe>(1);
    for (int stages : {2, 4}) {
        for (const auto& r : {run<schedule::gpipe>(stages), run<schedule::one_f_one_b>(stages)}) {
            INFO(stages << " stages");
            REQUIRE(r.loss == Approx(one.loss).epsilon(1e-6));
            REQUIRE(r.gradients.size() == one.gradients.size());
            double worst = 0, scale = 0;
            for (std::size_t i = 0; i < r.gradients.size(); ++i) {
                worst = std::max(worst, static_cast<double>(std::abs(r.gradients[i] - one.gradients[i])));
                scale = std::max(scale, static_cast<double>(std::abs(one.gradients[i])));
            }
            REQUIRE(worst <= 1e-5 * scale);
        }
    }
}

TEST_CASE("gpt pipeline: AC-SGD compression keeps the loss within 1 percent", "[gpt_pipeline]") {
    const auto exact = run<schedule::one_f_one_b>(2);
    const auto compressed = run<schedule::one_f_one_b, compress::delta<compress::quantize<8>>, compress::quantize<8>>(2);
    REQUIRE(compressed.loss == Approx(exact.loss).epsilon(0.01));
}
