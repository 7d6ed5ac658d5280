// strategy::data_parallel<Collective, Compressor, Sync>: replicas of one model on the ranks of a
// transport, kept together by Collective<Compressor> according to Sync:
//   every_step     — gradients averaged every step (DDP; CocktailSGD with a compressed collective);
//   local_sgd<H>   — H local optimizer steps, then the parameters averaged (Stich 2019);
//   diloco<H, Outer> — H local (inner) steps, then an outer step on the averaged pseudo-gradient
//                    θ_start − θ_local, Nesterov momentum by default (Douillard et al. 2023);
//   decentralized  — a local step, then the parameters mixed with the neighbours' (D-PSGD, Lian et
//                    al. 2017; with gossip<C>, CHOCO-SGD's compressed form): replicas agree only
//                    approximately, and no rank waits for more than its neighbours.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dtfm/concepts/collective.hpp"
#include "dtfm/concepts/optimizer.hpp"
#include "dtfm/concepts/transport.hpp"
#include "dtfm/error.hpp"
#include "dtfm/optim/sgd.hpp"

namespace dtfm::strategy {

struct every_step {
    template <class Collective, class T, class Optimizer>
    bool step(Collective& c, T& t, std::span<float> params, std::span<float> grads, Optimizer& inner) {
        c.allreduce(t, grads).wait();
        inner.step(params, std::span<const float>(grads));
        return true;
    }
};

struct decentralized {
    template <class Collective, class T, class Optimizer>
    bool step(Collective& c, T& t, std::span<float> params, std::span<float> grads, Optimizer& inner) {
        inner.step(params, std::span<const float>(grads));
        c.allreduce(t, params).wait();
        return true;
    }
};

namespace detail {

// Local steps from an anchor; every H steps the ranks average Δ = anchor − θ (never θ itself, so a
// lossy collective compresses a small difference, not the weights), then apply(anchor, Δ̄).
template <int H>
class periodic_sync {
    static_assert(H >= 1, "sync every H ≥ 1 steps");

public:
    static constexpr int period = H;

protected:
    template <class Collective, class T, class Optimizer, class Apply>
    bool local_then_sync(Collective& c, T& t, std::span<float> params, std::span<float> grads, Optimizer& inner,
                         Apply&& apply) {
        if (anchor_.size() != params.size()) anchor_.assign(params.begin(), params.end());
        inner.step(params, std::span<const float>(grads));
        if (++since_sync_ < H) return false;
        since_sync_ = 0;
        delta_.resize(params.size());
        for (std::size_t i = 0; i < params.size(); ++i) delta_[i] = anchor_[i] - params[i];
        c.allreduce(t, std::span<float>(delta_)).wait();
        std::copy(anchor_.begin(), anchor_.end(), params.begin());
        apply(params, std::span<const float>(delta_));
        std::copy(params.begin(), params.end(), anchor_.begin());
        return true;
    }

public:
    template <class Archive>
    void serialize(Archive& a) {
        a.values("anchor", anchor_);
        a.value("since_sync", since_sync_);
    }

private:
    std::vector<float> anchor_, delta_;
    int since_sync_ = 0;
};

}  // namespace detail

template <int H>
struct local_sgd : detail::periodic_sync<H> {
    template <class Collective, class T, class Optimizer>
    bool step(Collective& c, T& t, std::span<float> params, std::span<float> grads, Optimizer& inner) {
        return this->local_then_sync(c, t, params, grads, inner, [](std::span<float> p, std::span<const float> d) {
            for (std::size_t i = 0; i < p.size(); ++i) p[i] -= d[i];  // θ = anchor − Δ̄: the averaged model
        });
    }
};

// Model averaging through a compressing collective in which every replica keeps what its
// compressor held back in its own parameters (CocktailSGD's local models). Every H steps the
// replicas send their change since the last sync, Δ_i, through the collective (which adds its
// worker error e_i); the consensus becomes x̂ ← x̂ − mean C(Δ_i + e_i) and each replica sets
// θ_i = x̂ − e_i with its new residual. Its optimizer so sees its own updates at once. With
// local_sgd<H> over the same collective the unsent part waits in the collective instead, for
// about as many steps as the compression ratio, and Adam keeps pushing on coordinates whose
// change has not landed yet: training from scratch then stalls or diverges.
// Replicas differ by their residuals (bounded by what the compressor sends); x̂ is what they agree
// on. Needs a collective that reports its residual (compressed_allreduce).
template <int H = 1>
struct residual_sync {
    static_assert(H >= 1, "sync every H ≥ 1 steps");
    static constexpr int period = H;

    template <class Collective, class T, class Optimizer>
    bool step(Collective& c, T& t, std::span<float> params, std::span<float> grads, Optimizer& inner) {
        static_assert(requires(const Collective& k, std::span<float> out) { k.worker_residual(out); },
                      "residual_sync needs a collective with worker_residual() (compressed_allreduce)");
        if (anchor_.size() != params.size()) {
            anchor_.assign(params.begin(), params.end());
            consensus_.assign(params.begin(), params.end());
        }
        inner.step(params, std::span<const float>(grads));
        if (++since_sync_ < H) return false;
        since_sync_ = 0;
        delta_.resize(params.size());
        for (std::size_t i = 0; i < params.size(); ++i) delta_[i] = anchor_[i] - params[i];
        c.allreduce(t, std::span<float>(delta_)).wait();
        c.worker_residual(std::span<float>(anchor_));  // anchor_ holds e_i for a moment
        for (std::size_t i = 0; i < params.size(); ++i) {
            consensus_[i] -= delta_[i];
            params[i] = consensus_[i] - anchor_[i];
        }
        std::copy(params.begin(), params.end(), anchor_.begin());
        return true;
    }

    // The parameters every replica agrees on, x̂ (empty before the first step).
    std::span<const float> consensus() const noexcept { return consensus_; }

    template <class Archive>
    void serialize(Archive& a) {
        a.values("anchor", anchor_);
        a.values("consensus", consensus_);
        a.value("since_sync", since_sync_);
    }

private:
    std::vector<float> anchor_, consensus_, delta_;
    int since_sync_ = 0;
};

template <int H, concepts::optimizer Outer = optim::sgd>
struct diloco : detail::periodic_sync<H> {
    // DiLoCo's outer optimizer: SGD, lr 0.7, Nesterov momentum 0.9.
    static Outer default_outer() {
        if constexpr (std::same_as<Outer, optim::sgd>)
            return optim::sgd(optim::sgd_options{.lr = 0.7f, .momentum = 0.9f, .nesterov = true});
        else
            return Outer{};
    }

    explicit diloco(Outer o = default_outer()) : outer(std::move(o)) {}

    template <class Archive>
    void serialize(Archive& a) {
        detail::periodic_sync<H>::serialize(a);
        if constexpr (requires { outer.serialize(a); }) {
            auto o = a.nested("outer");
            outer.serialize(o);
        }
    }

    template <class Collective, class T, class Optimizer>
    bool step(Collective& c, T& t, std::span<float> params, std::span<float> grads, Optimizer& inner) {
        return this->local_then_sync(c, t, params, grads, inner,
                                     [this](std::span<float> p, std::span<const float> d) { outer.step(p, d); });
    }

    Outer outer;
};

// Collective<Compressor> must be a collective (ring<identity>, compressed_allreduce<C>,
// gossip<C>…). step() is called once per training step on every rank, after the local backward
// pass, and returns whether the ranks synchronised in it. Parameters must start equal on every rank.
// The collective runs on its own thread, but step() waits for it: the caller overlaps compute with
// communication by bucketing gradients itself (collective::buckets) or by sync policies that
// communicate rarely.
template <template <class...> class Collective, class Compressor, class Sync = every_step>
class data_parallel {
public:
    using collective_type = Collective<Compressor>;
    using sync_type = Sync;
    static_assert(std::same_as<typename collective_type::collective_concept, collective_tag>,
                  "data_parallel: Collective<Compressor> is not a collective");
    static_assert(std::same_as<typename collective_type::value_type, float>, "data_parallel: float parameters");

    explicit data_parallel(collective_type c = collective_type{}, Sync s = Sync{})
        : collective_(std::move(c)), sync_(std::move(s)) {}

    template <concepts::transport T, concepts::optimizer Optimizer>
        requires concepts::collective<collective_type, T>
    bool step(T& t, std::span<float> params, std::span<float> grads, Optimizer& inner) {
        if (params.size() != grads.size())
            throw error("data_parallel::step: " + std::to_string(params.size()) + " parameters but " +
                        std::to_string(grads.size()) + " gradients");
        ++steps_;
        const bool synced = sync_.step(collective_, t, params, grads, inner);
        if (synced) ++syncs_;
        return synced;
    }

    std::uint64_t steps() const noexcept { return steps_; }
    std::uint64_t synchronisations() const noexcept { return syncs_; }

    // Counters, the sync policy's state and the collective's, for checkpoints.
    template <class Archive>
    void serialize(Archive& a) {
        a.value("steps", steps_);
        a.value("syncs", syncs_);
        if constexpr (requires { sync_.serialize(a); }) {
            auto s = a.nested("sync");
            sync_.serialize(s);
        }
        if constexpr (requires { collective_.serialize(a); }) {
            auto c = a.nested("collective");
            collective_.serialize(c);
        }
    }
    collective_type& collective() noexcept { return collective_; }
    Sync& sync() noexcept { return sync_; }

private:
    collective_type collective_;
    Sync sync_;
    std::uint64_t steps_ = 0, syncs_ = 0;
};

}  // namespace dtfm::strategy
