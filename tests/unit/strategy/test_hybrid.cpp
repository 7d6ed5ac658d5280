// strategy::hybrid on the in-process transport with the toy staged model: a 2 × 2 mesh trains
// the same parameters as 1 stage × 2 replicas, whatever the placement; the placement checks its
// input; plan files parse and bad ones raise config_error.
#include <catch2/catch.hpp>

#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "dtfm/collective/ring_allreduce.hpp"
#include "dtfm/compress/identity.hpp"
#include "dtfm/data/markov.hpp"
#include "dtfm/data/sharding.hpp"
#include "dtfm/optim/sgd.hpp"
#include "dtfm/plan/plan_file.hpp"
#include "dtfm/schedule/one_f_one_b.hpp"
#include "dtfm/strategy/data_parallel.hpp"
#include "dtfm/strategy/hybrid.hpp"
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

using pp_type = strategy::pipeline_parallel<schedule::one_f_one_b>;
using dp_type = strategy::data_parallel<collective::ring, compress::identity>;

// Trains the toy model on a mesh and returns every stage's parameters of replica 0, in order.
std::vector<float> train(const strategy::mesh_placement& placement, int steps) {
    const toy_config c;
    const data::markov_source src(c.vocab, 1, 3, 3);
    const int micro_batch = 2, microbatches = 2;
    const data::sharding shards(64, placement.replicas(), microbatches, micro_batch, 1);
    std::vector<std::vector<float>> params(static_cast<std::size_t>(placement.stages()));
    std::mutex m;
    run_inproc(placement.ranks(), [&](inproc& world) {
        strategy::hybrid<pp_type, dp_type> h(placement, pp_type(strategy::pipeline_options{.tag = 0, .timeout = 10s}), dp_type());
        auto g = h.split(world);
        toy_stage stage(c, g.stage, placement.stages(), micro_batch, microbatches);
        optim::sgd opt(optim::sgd_options{.lr = 0.1f});
        std::vector<std::vector<std::uint64_t>> ids(microbatches);
        std::vector<std::vector<std::int32_t>> tokens(microbatches), targets(microbatches);
        for (int s = 0; s < steps; ++s) {
            auto source = [&](int mb) {
                const auto k = static_cast<std::size_t>(mb);
                ids[k] = shards.ids(static_cast<std::uint64_t>(s), g.replica, mb);
                tokens[k].clear(), targets[k].clear();
                std::vector<std::int32_t> seq(static_cast<std::size_t>(c.context) + 1);
                for (auto id : ids[k]) {
                    src.sample(id, seq);
                    tokens[k].insert(tokens[k].end(), seq.begin(), seq.end() - 1);
                    targets[k].insert(targets[k].end(), seq.begin() + 1, seq.end());
                }
                return strategy::microbatch{ids[k], tokens[k], targets[k]};
            };
            h.step(g, stage, opt, microbatches, source);
        }
        if (g.replica == 0) {
            std::lock_guard lock(m);
            params[static_cast<std::size_t>(g.stage)].assign(stage.parameters().begin(), stage.parameters().end());
        }
    });
    std::vector<float> all;
    for (auto& p : params) all.insert(all.end(), p.begin(), p.end());
    return all;
}

}  // namespace

TEST_CASE("hybrid: a 2 x 2 mesh trains what 1 stage x 2 replicas trains, in any placement", "[hybrid]") {
    const auto reference = train(strategy::mesh_placement::default_order(1, 2), 3);
    const auto mesh = train(strategy::mesh_placement::default_order(2, 2), 3);
    const auto shuffled = train(strategy::mesh_placement({{3, 0}, {1, 2}}), 3);
    REQUIRE(mesh.size() == reference.size());
    for (std::size_t i = 0; i < reference.size(); ++i) {
        REQUIRE(mesh[i] == Approx(reference[i]).margin(1e-5));
        REQUIRE(shuffled[i] == mesh[i]);
    }
}

TEST_CASE("mesh_placement checks its pipelines", "[hybrid]") {
    const auto p = strategy::mesh_placement({{3, 0}, {1, 2}});
    REQUIRE(p.stages() == 2);
    REQUIRE(p.replicas() == 2);
    REQUIRE(p.stage_of(0) == 1);
    REQUIRE(p.replica_of(1) == 1);
    REQUIRE(p.rank_at(0, 0) == 3);
    REQUIRE_THROWS_AS(strategy::mesh_placement({}), dtfm::config_error);
    REQUIRE_THROWS_AS(strategy::mesh_placement({{0, 1}, {2}}), dtfm::config_error);
    REQUIRE_THROWS_AS(strategy::mesh_placement({{0, 1}, {1, 2}}), dtfm::config_error);
    REQUIRE_THROWS_AS(strategy::mesh_placement({{0, 4}, {1, 2}}), dtfm::config_error);
    run_inproc(3, [&](inproc& world) {
        strategy::hybrid<pp_type, dp_type> h(strategy::mesh_placement::default_order(2, 2), pp_type(), dp_type());
        DTFM_RANK_REQUIRE_THROWS_AS(h.split(world), dtfm::config_error);
    });
}

TEST_CASE("plan files: pipelines parse, bad files raise config_error", "[hybrid][plan]") {
    const auto p = plan::parse_placement(R"({"pipelines": [[0, 2], [1, 3]], "cost": {"total": 3.5}})");
    REQUIRE(p.rank_at(1, 0) == 2);
    REQUIRE_THROWS_AS(plan::parse_placement("{"), dtfm::config_error);
    REQUIRE_THROWS_AS(plan::parse_placement(R"({"pipes": []})"), dtfm::config_error);
    REQUIRE_THROWS_AS(plan::parse_placement(R"({"pipelines": [[0, "a"]]})"), dtfm::config_error);
    REQUIRE_THROWS_AS(plan::parse_placement(R"({"pipelines": [[0, 1], [1, 0]]})"), dtfm::config_error);
    REQUIRE_THROWS_AS(plan::parse_placement(R"({"pipelines": [[-1]]})"), dtfm::config_error);
    REQUIRE_THROWS_AS(plan::load_placement("/nonexistent/plan.json"), dtfm::config_error);
}
