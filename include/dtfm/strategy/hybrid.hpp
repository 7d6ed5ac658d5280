// strategy::hybrid<PP, DP>: pipeline × data parallelism on a stages × replicas mesh of ranks. Each
// replica is one pipeline (PP runs its micro-batches); each stage's copies across replicas form a
// data-parallel group (DP keeps them together). Which rank runs which (stage, replica) comes from
// a placement: a planner's plan file ({"pipelines": [[rank per stage] per replica]}) or the
// default order, rank = replica·stages + stage.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dtfm/concepts/optimizer.hpp"
#include "dtfm/concepts/transport.hpp"
#include "dtfm/error.hpp"
#include "dtfm/strategy/pipeline_parallel.hpp"

namespace dtfm::strategy {

class mesh_placement {
public:
    // pipelines[r][s] is the rank running stage s of replica r; every rank of 0…S·R−1 exactly once.
    explicit mesh_placement(std::vector<std::vector<int>> pipelines) : pipelines_(std::move(pipelines)) {
        if (pipelines_.empty() || pipelines_[0].empty()) throw config_error("placement: no pipelines, or an empty one");
        const std::size_t stages = pipelines_[0].size();
        const std::size_t ranks = stages * pipelines_.size();
        position_.assign(ranks, {-1, -1});
        for (std::size_t r = 0; r < pipelines_.size(); ++r) {
            if (pipelines_[r].size() != stages)
                throw config_error("placement: pipeline " + std::to_string(r) + " has " + std::to_string(pipelines_[r].size()) +
                                   " stages, pipeline 0 has " + std::to_string(stages));
            for (std::size_t s = 0; s < stages; ++s) {
                const int rank = pipelines_[r][s];
                if (rank < 0 || static_cast<std::size_t>(rank) >= ranks)
                    throw config_error("placement: rank " + std::to_string(rank) + " is outside 0…" + std::to_string(ranks - 1));
                if (position_[static_cast<std::size_t>(rank)].first >= 0)
                    throw config_error("placement: rank " + std::to_string(rank) + " appears twice");
                position_[static_cast<std::size_t>(rank)] = {static_cast<int>(s), static_cast<int>(r)};
            }
        }
    }

    static mesh_placement default_order(int stages, int replicas) {
        if (stages < 1 || replicas < 1) throw config_error("placement: stages and replicas must be positive");
        std::vector<std::vector<int>> p(static_cast<std::size_t>(replicas), std::vector<int>(static_cast<std::size_t>(stages)));
        for (int r = 0; r < replicas; ++r)
            for (int s = 0; s < stages; ++s) p[static_cast<std::size_t>(r)][static_cast<std::size_t>(s)] = r * stages + s;
        return mesh_placement(std::move(p));
    }

    int stages() const noexcept { return static_cast<int>(pipelines_[0].size()); }
    int replicas() const noexcept { return static_cast<int>(pipelines_.size()); }
    int ranks() const noexcept { return stages() * replicas(); }
    int stage_of(int rank) const { return position_.at(static_cast<std::size_t>(rank)).first; }
    int replica_of(int rank) const { return position_.at(static_cast<std::size_t>(rank)).second; }
    int rank_at(int stage, int replica) const { return pipelines_.at(static_cast<std::size_t>(replica)).at(static_cast<std::size_t>(stage)); }
    const std::vector<std::vector<int>>& pipelines() const noexcept { return pipelines_; }

private:
    std::vector<std::vector<int>> pipelines_;
    std::vector<std::pair<int, int>> position_;  // rank → (stage, replica)
};

// This rank's two groups: its pipeline (ranked by stage) and its stage's data-parallel group
// (ranked by replica).
template <concepts::transport T>
struct mesh_groups {
    T pipeline;
    T data;
    int stage;
    int replica;
};

template <class PP, class DP>
class hybrid {
public:
    using pipeline_type = PP;
    using data_parallel_type = DP;

    hybrid(mesh_placement placement, PP pp, DP dp) : placement_(std::move(placement)), pp_(std::move(pp)), dp_(std::move(dp)) {}

    // Collective over the world: every rank calls it once, before training.
    template <concepts::transport T>
    mesh_groups<T> split(T& world) const {
        if (world.size() != placement_.ranks())
            throw config_error("hybrid: the placement has " + std::to_string(placement_.ranks()) + " ranks (" +
                               std::to_string(placement_.stages()) + " stages × " + std::to_string(placement_.replicas()) +
                               " replicas), the transport " + std::to_string(world.size()));
        const int me = world.rank();
        const int stage = placement_.stage_of(me), replica = placement_.replica_of(me);
        T pipeline = world.split(replica, stage);
        T data = world.split(placement_.replicas() + stage, replica);
        return mesh_groups<T>{std::move(pipeline), std::move(data), stage, replica};
    }

    // One training step on this rank: the pipeline's micro-batches (gradients accumulate in the
    // stage, which starts from zero gradients), then the data-parallel step of this stage's
    // parameters. Returns the pipeline's loss (meaningful on last stages, NaN elsewhere).
    template <concepts::transport T, concepts::pipeline_stage S, concepts::optimizer O, class Source>
    double step(mesh_groups<T>& g, S& stage, O& optimizer, int microbatches, Source&& source) {
        stage.zero_gradients();
        const double loss = pp_.run(g.pipeline, stage, microbatches, source);
        dp_.step(g.data, stage.parameters(), stage.gradients(), optimizer);
        return loss;
    }

    template <concepts::transport T, concepts::pipeline_stage S, class Source>
    double evaluate(mesh_groups<T>& g, S& stage, int microbatches, Source&& source) {
        return pp_.evaluate(g.pipeline, stage, microbatches, source);
    }

    const mesh_placement& placement() const noexcept { return placement_; }
    PP& pipeline() noexcept { return pp_; }
    DP& data_parallel() noexcept { return dp_; }

private:
    mesh_placement placement_;
    PP pp_;
    DP dp_;
};

}  // namespace dtfm::strategy
