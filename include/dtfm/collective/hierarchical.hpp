// collective::hierarchical<Intra, Inter>: the average over a WAN of fast regions (BAGUA's and
// Horovod's hierarchical all-reduce): full precision inside each region (Intra), compressed between
// one leader per region (Inter), then a pipelined broadcast from the leader inside the region.
// Only the leaders touch the slow links, once each.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dtfm/collective/compressed_allreduce.hpp"
#include "dtfm/collective/operation.hpp"
#include "dtfm/collective/options.hpp"
#include "dtfm/collective/ring_allreduce.hpp"
#include "dtfm/compress/cocktail.hpp"
#include "dtfm/concepts/collective.hpp"
#include "dtfm/concepts/transport.hpp"
#include "dtfm/error.hpp"

namespace dtfm::collective {

// Region names (say plan::topology's device regions, in rank order) as ids 0, 1, … in the order
// they first appear.
inline std::vector<int> region_ids(std::span<const std::string> names) {
    std::vector<std::string> seen;
    std::vector<int> ids;
    ids.reserve(names.size());
    for (const auto& n : names) {
        auto it = std::find(seen.begin(), seen.end(), n);
        if (it == seen.end()) {
            seen.push_back(n);
            it = seen.end() - 1;
        }
        ids.push_back(static_cast<int>(it - seen.begin()));
    }
    return ids;
}

// Intra and Inter are float collectives with allreduce_blocking (ring_allreduce,
// compressed_allreduce, …). The first call splits the transport into the region groups and the
// leaders' group (collective, like every call); later calls with the same transport reuse them.
// The leader of a region is its lowest rank. The average is weighted by region size, so it is the
// average over all ranks, not over regions.
template <class Intra = ring_allreduce<float>, class Inter = compressed_allreduce<compress::cocktail<>>>
class hierarchical {
public:
    using collective_concept = collective_tag;
    using value_type = float;

    explicit hierarchical(std::vector<int> region_of_rank, Intra intra = Intra(), Inter inter = Inter(), options o = {})
        : regions_(std::move(region_of_rank)), intra_(std::move(intra)), inter_(std::move(inter)), options_(o) {
        dtfm::detail::check_options(o, "hierarchical");
        if (regions_.empty()) throw config_error("hierarchical: no ranks given");
        for (int r : regions_)
            if (r < 0) throw config_error("hierarchical: region ids must be non-negative");
        std::vector<int> distinct(regions_);
        std::sort(distinct.begin(), distinct.end());
        region_count_ = static_cast<int>(std::unique(distinct.begin(), distinct.end()) - distinct.begin());
    }

    template <concepts::transport Tr>
    operation allreduce(Tr& t, std::span<float> data) {
        return worker_->submit([this, &t, data] { allreduce_blocking(t, data); });
    }

    template <concepts::transport Tr>
    void allreduce_blocking(Tr& t, std::span<float> data) {
        if (static_cast<std::size_t>(t.size()) != regions_.size())
            throw config_error("hierarchical: the transport has " + std::to_string(t.size()) + " ranks, the region map " +
                               std::to_string(regions_.size()));
        auto& g = groups_for(t);
        intra_.allreduce_blocking(g.intra, data);
        if (g.intra.rank() == 0) {
            // Region average × region size × regions ÷ ranks, averaged over regions: the average over ranks.
            const float weight = static_cast<float>(g.intra.size()) * static_cast<float>(region_count_) /
                                 static_cast<float>(regions_.size());
            if (weight != 1.0f)
                for (auto& v : data) v *= weight;
            inter_.allreduce_blocking(g.leaders, data);
        }
        broadcast_from_leader(g.intra, data);
    }

    int regions() const noexcept { return region_count_; }
    Intra& intra() noexcept { return intra_; }
    Inter& inter() noexcept { return inter_; }

private:
    template <class Tr>
    struct groups {
        const Tr* world;
        Tr intra, leaders;
    };

    template <class Tr>
    static const void* key() {
        static const char k = 0;
        return &k;
    }

    template <class Tr>
    groups<Tr>& groups_for(Tr& t) {
        if (groups_key_ == key<Tr>() && static_cast<groups<Tr>*>(groups_.get())->world == &t)
            return *static_cast<groups<Tr>*>(groups_.get());
        const int me = t.rank();
        Tr intra = t.split(regions_[static_cast<std::size_t>(me)], me);
        const bool leader = intra.rank() == 0;
        Tr leaders = t.split(leader ? 0 : 1, me);
        groups_ = std::shared_ptr<void>(new groups<Tr>{&t, std::move(intra), std::move(leaders)},
                                        [](void* p) { delete static_cast<groups<Tr>*>(p); });
        groups_key_ = key<Tr>();
        return *static_cast<groups<Tr>*>(groups_.get());
    }

    // A chain from the leader (rank 0) through ranks 1, 2, …: each slice is forwarded as soon as
    // it arrives, so the region's ranks receive in about one buffer's time plus one slice per hop.
    template <class Tr>
    void broadcast_from_leader(Tr& group, std::span<float> data) {
        const int p = group.size(), me = group.rank();
        if (p == 1 || data.empty()) return;
        const message_tag tag = dtfm::detail::collective_tag_at(options_, 2);
        const std::size_t slice = std::max<std::size_t>(1, options_.slice_bytes / sizeof(float));
        using request = typename Tr::request_type;
        std::vector<request> recvs, sends;
        for (std::size_t at = 0; at < data.size(); at += slice) {
            auto piece = std::as_writable_bytes(data.subspan(at, std::min(slice, data.size() - at)));
            if (me > 0) recvs.push_back(group.irecv(me - 1, tag, piece));
        }
        std::size_t k = 0;
        for (std::size_t at = 0; at < data.size(); at += slice, ++k) {
            auto piece = std::as_bytes(data.subspan(at, std::min(slice, data.size() - at)));
            if (me > 0) dtfm::detail::await(recvs[k], options_, "hierarchical: broadcast receive");
            if (me + 1 < p) sends.push_back(group.isend(me + 1, tag, piece));
        }
        for (auto& s : sends) dtfm::detail::await(s, options_, "hierarchical: broadcast send");
    }

    std::vector<int> regions_;
    int region_count_ = 0;
    Intra intra_;
    Inter inter_;
    options options_;
    std::shared_ptr<void> groups_;
    const void* groups_key_ = nullptr;
    std::unique_ptr<dtfm::detail::background_worker> worker_ = std::make_unique<dtfm::detail::background_worker>();
};

}  // namespace dtfm::collective
