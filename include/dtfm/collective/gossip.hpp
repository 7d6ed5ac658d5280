// collective::gossip<C, Graph>: decentralized averaging, one gossip round per call, as BAGUA's
// (low-precision) decentralized SGD and CHOCO-SGD (Koloskova et al. 2019, Algorithm 1). Each rank i
// keeps x̂_i, the copy of its values its neighbours know, and a replica x̂_j of every in-neighbour j:
//     q_i = C(x_i − x̂_i) to every out-neighbour;   x̂_j += D(q_j) for j ∈ {i} ∪ in(i);
//     x_i += γ Σ_{j ∈ in(i)} w (x̂_j − x̂_i),        w = 1 / (in-degree + 1).
// With identity and γ = 1 this is plain gossip, x_i ← w (x_i + Σ_j x_j). The graphs are circulant,
// so the mixing matrix is doubly stochastic and every round keeps the mean over ranks.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dtfm/collective/compressed_allreduce.hpp"
#include "dtfm/collective/operation.hpp"
#include "dtfm/collective/options.hpp"
#include "dtfm/compress/identity.hpp"
#include "dtfm/concepts/collective.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/concepts/transport.hpp"
#include "dtfm/error.hpp"

namespace dtfm::collective {

// Ring: neighbours r ± 1 (one neighbour for two ranks, none for one), undirected.
struct ring_graph {
    static std::vector<int> out_neighbours(int rank, int size) {
        std::vector<int> n;
        if (size > 1) n.push_back((rank + 1) % size);
        if (size > 2) n.push_back((rank + size - 1) % size);
        return n;
    }
    static std::vector<int> in_neighbours(int rank, int size) { return out_neighbours(rank, size); }
};

// Static exponential graph (Assran et al. 2019; Ying et al. 2021): directed edges r → r + 2^k mod P
// for every 2^k < P, so log2 P neighbours and a spectral gap that does not shrink with P as a
// ring's does.
struct exponential_graph {
    static std::vector<int> out_neighbours(int rank, int size) {
        std::vector<int> n;
        for (int hop = 1; hop < size; hop *= 2) n.push_back((rank + hop) % size);
        return n;
    }
    static std::vector<int> in_neighbours(int rank, int size) {
        std::vector<int> n;
        for (int hop = 1; hop < size; hop *= 2) n.push_back(((rank - hop) % size + size) % size);
        return n;
    }
};

// Every rank ends with its own estimate of the average (not the same values on every rank); the
// mean over ranks of the buffers is kept by every round, and the spread between ranks shrinks
// geometrically with the rounds. The buffer size is fixed by the first call (reset() forgets it
// with the replicas). The whole payload goes to a neighbour as one message (a compressed payload
// cannot be cut into slices and decoded piece by piece): options::slice_bytes is not used. After a
// failed call (a timeout) the replicas are in an unknown state: reset() on every rank before going
// on. An error_feedback<C> given as C is unwrapped: x − x̂ already is CHOCO's error feedback.
template <class C = compress::identity, class Graph = ring_graph>
    requires concepts::compressor<C> && std::same_as<typename C::value_type, float> &&
             std::same_as<typename C::memory_space, host_space> && requires(int r, int p) {
                 { Graph::out_neighbours(r, p) } -> std::same_as<std::vector<int>>;
                 { Graph::in_neighbours(r, p) } -> std::same_as<std::vector<int>>;
             }
class gossip {
public:
    using collective_concept = collective_tag;
    using value_type = float;
    using compressor_type = typename dtfm::detail::without_feedback<C>::type;
    using graph_type = Graph;

    // gamma is CHOCO's consensus step: 1 for exact differences (identity); below 1 (CHOCO uses
    // about the compressor's δ) when C drops or rounds part of x − x̂.
    explicit gossip(compressor_type prototype = compressor_type(), float gamma = 1.0f, options o = {})
        : prototype_(std::move(prototype)), gamma_(gamma), options_(o) {
        dtfm::detail::check_options(o, "gossip");
        if (!(gamma > 0.0f && gamma <= 1.0f))
            throw config_error("gossip: the consensus step gamma must lie in (0, 1], got " + std::to_string(gamma));
    }
    explicit gossip(options o) : gossip(compressor_type{}, 1.0f, o) {}

    template <concepts::transport Tr>
    operation allreduce(Tr& t, std::span<float> data) {
        return worker_->submit([this, &t, data] { allreduce_blocking(t, data); });
    }

    template <concepts::transport Tr>
    void allreduce_blocking(Tr& t, std::span<float> data) {
        const int p = t.size();
        if (p == 1 || data.empty()) return;
        size_for(data.size(), p, t.rank());
        const std::size_t n = data.size();
        const message_tag tag = dtfm::detail::collective_tag_at(options_, 0);
        using request = typename Tr::request_type;
        std::vector<request> sends, recvs(in_.size());

        for (std::size_t j = 0; j < in_.size(); ++j) recvs[j] = t.irecv(in_[j], tag, incoming_[j]);

        // q = C(x − x̂_self), the same payload to every out-neighbour.
        for (std::size_t i = 0; i < n; ++i) scratch_[i] = data[i] - self_[i];
        dtfm::detail::set_compression_context(encoder_, round_, static_cast<std::uint64_t>(rank_));
        const std::size_t bytes = encoder_.encode(scratch_, outgoing_);
        const std::span<const std::byte> payload(outgoing_.data(), bytes);
        for (int j : out_) {
            sends.push_back(t.isend(j, tag, payload));
            traffic_.payload_bytes += bytes;
            traffic_.value_bytes += n * sizeof(float);
        }
        // x̂_self moves by what the neighbours decode, not by x − x̂: every replica of it stays
        // bit-identical to it.
        absorb(payload, rank_, self_);
        for (std::size_t j = 0; j < in_.size(); ++j) {
            const std::size_t got = dtfm::detail::await(recvs[j], options_, "gossip: neighbour payload");
            absorb(std::span<const std::byte>(incoming_[j]).first(got), in_[j], replicas_[j]);
        }

        const float step = gamma_ * weight_;
        for (std::size_t i = 0; i < n; ++i) {
            float pull = 0.0f;
            for (const auto& r : replicas_) pull += r[i] - self_[i];
            data[i] += step * pull;
        }
        for (auto& q : sends) dtfm::detail::await(q, options_, "gossip: send");
        ++round_;
    }

    // Forgets the buffer size, the replicas and the round (every rank must reset together).
    void reset() {
        size_ = 0;
        round_ = 0;
        replicas_.clear();
    }

    traffic sent() const noexcept { return traffic_; }
    std::uint64_t round() const noexcept { return round_; }
    float gamma() const noexcept { return gamma_; }
    const options& settings() const noexcept { return options_; }

    // Known after the first call: the neighbours, the mixing weight, x̂_self and the replica of
    // in-neighbour `rank` (which equals x̂_self on that rank, bit for bit).
    const std::vector<int>& out_neighbours() const noexcept { return out_; }
    const std::vector<int>& in_neighbours() const noexcept { return in_; }
    float mixing_weight() const noexcept { return weight_; }
    std::span<const float> estimate() const noexcept { return self_; }
    std::span<const float> replica(int rank) const {
        const auto it = std::find(in_.begin(), in_.end(), rank);
        if (it == in_.end() || replicas_.empty()) throw error("gossip: rank " + std::to_string(rank) + " is not an in-neighbour");
        return replicas_[static_cast<std::size_t>(it - in_.begin())];
    }

private:
    // x̂ += D(payload of `sender` in this round).
    void absorb(std::span<const std::byte> payload, int sender, std::vector<float>& into) {
        dtfm::detail::set_compression_context(decoder_, round_, static_cast<std::uint64_t>(sender));
        decoder_.decode(payload, decoded_);
        for (std::size_t i = 0; i < into.size(); ++i) into[i] += decoded_[i];
    }

    void size_for(std::size_t n, int p, int rank) {
        if (size_ == n && p_ == p && rank_ == rank && !replicas_.empty()) return;
        if (size_ != 0)
            throw error("gossip: " + std::to_string(n) + " values on " + std::to_string(p) + " ranks, this instance carries replicas for " +
                        std::to_string(size_) + " on " + std::to_string(p_) +
                        " (call reset() to change the buffer size, or use one instance per bucket)");
        out_ = Graph::out_neighbours(rank, p);
        in_ = Graph::in_neighbours(rank, p);
        if (in_.empty() || out_.size() != in_.size())
            throw config_error("gossip: rank " + std::to_string(rank) + " has " + std::to_string(in_.size()) + " in- and " +
                               std::to_string(out_.size()) + " out-neighbours; the mixing needs equal, non-zero degrees");
        size_ = n;
        p_ = p;
        rank_ = rank;
        weight_ = 1.0f / static_cast<float>(in_.size() + 1);
        encoder_ = prototype_;
        decoder_ = prototype_;
        self_.assign(n, 0.0f);
        replicas_.assign(in_.size(), std::vector<float>(n, 0.0f));
        scratch_.assign(n, 0.0f);
        decoded_.assign(n, 0.0f);
        outgoing_.assign(prototype_.max_payload_bytes(n), std::byte{0});
        incoming_.assign(in_.size(), std::vector<std::byte>(prototype_.max_payload_bytes(n)));
    }

    compressor_type prototype_;
    float gamma_;
    options options_;
    std::size_t size_ = 0;
    int p_ = 0;
    int rank_ = 0;
    std::uint64_t round_ = 0;
    float weight_ = 1.0f;
    traffic traffic_;
    std::vector<int> out_, in_;
    compressor_type encoder_, decoder_;
    std::vector<float> self_, scratch_, decoded_;
    std::vector<std::vector<float>> replicas_;
    std::vector<std::byte> outgoing_;
    std::vector<std::vector<std::byte>> incoming_;
    std::unique_ptr<dtfm::detail::background_worker> worker_ = std::make_unique<dtfm::detail::background_worker>();
};

}  // namespace dtfm::collective
