// collective::ring_allreduce: the bandwidth-optimal ring (Patarasuk & Yuan 2009): a reduce-scatter
// then an all-gather, P−1 steps each, every rank sending 2(P−1)/P of the buffer. Segments move in
// slices so a slice is reduced and forwarded while the next one is on the wire.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "dtfm/collective/operation.hpp"
#include "dtfm/collective/options.hpp"
#include "dtfm/compress/identity.hpp"
#include "dtfm/concepts/collective.hpp"
#include "dtfm/concepts/transport.hpp"

namespace dtfm::collective {

// T is any arithmetic type; Op is sum (exact for integers) or average (floating point only).
// allreduce starts on a background thread and returns an operation; allreduce_blocking runs on the
// calling thread (what composite collectives use inside their own background task). Any rank
// count, any size (segments need not divide evenly; empty ones send nothing).
template <class T = float, class Op = average>
    requires std::is_arithmetic_v<T> && (std::same_as<Op, sum> || (std::same_as<Op, average> && std::floating_point<T>))
class ring_allreduce {
public:
    using collective_concept = collective_tag;
    using value_type = T;

    explicit ring_allreduce(options o = {}) : options_(o) { dtfm::detail::check_options(o, "ring_allreduce"); }

    template <concepts::transport Tr>
    operation allreduce(Tr& t, std::span<T> data) {
        return worker_->submit([this, &t, data] { allreduce_blocking(t, data); });
    }

    template <concepts::transport Tr>
    void allreduce_blocking(Tr& t, std::span<T> data) {
        const int p = t.size();
        if (p == 1 || data.empty()) return;  // the average of one rank is its own buffer
        const auto n = data.size();
        const auto parts = static_cast<std::size_t>(p);
        const auto r = static_cast<std::size_t>(t.rank());
        const int right = (t.rank() + 1) % p, left = (t.rank() + p - 1) % p;
        const std::size_t slice = std::max<std::size_t>(1, options_.slice_bytes / sizeof(T));
        const std::size_t longest = dtfm::detail::segment_of(n, parts, 0).size;
        for (auto& s : scratch_)
            if (s.size() < longest) s.resize(longest);

        auto seg = [&](std::size_t step_back) {  // segment (r − step_back) mod P
            return dtfm::detail::segment_of(n, parts, (r + parts * 2 - step_back) % parts);
        };
        auto slices = [&](std::size_t size) { return (size + slice - 1) / slice; };
        auto piece = [&](std::span<T> base, std::size_t k) { return base.subspan(k * slice, std::min(slice, base.size() - k * slice)); };
        auto bytes = [](std::span<T> s) { return std::as_writable_bytes(s); };
        // Full precision: every segment but r+1 in the reduce-scatter, every one but r+2 after it.
        const std::uint64_t sent_bytes = (2 * n - dtfm::detail::segment_of(n, parts, (r + 1) % parts).size -
                                          dtfm::detail::segment_of(n, parts, (r + 2) % parts).size) * sizeof(T);
        traffic_.payload_bytes += sent_bytes;
        traffic_.value_bytes += sent_bytes;
        using request = typename Tr::request_type;
        std::vector<request> sends;
        std::vector<request> recvs;

        // Reduce-scatter: at step s, send segment r−s to the right, receive segment r−s−1 from the
        // left into scratch and add it in; what was just reduced is what step s+1 sends.
        const message_tag rs_tag = dtfm::detail::collective_tag_at(options_, 0);
        const message_tag ag_tag = dtfm::detail::collective_tag_at(options_, 1);
        auto post_rs_recvs = [&](std::size_t s) {
            const auto g = seg(s + 1);
            std::span<T> into(scratch_[s % 2].data(), g.size);
            recvs.clear();
            for (std::size_t k = 0; k < slices(g.size); ++k) recvs.push_back(t.irecv(left, rs_tag, bytes(piece(into, k))));
        };
        {
            const auto g = seg(0);
            std::span<T> mine = data.subspan(g.begin, g.size);
            for (std::size_t k = 0; k < slices(g.size); ++k) sends.push_back(t.isend(right, rs_tag, bytes(piece(mine, k))));
        }
        post_rs_recvs(0);
        for (std::size_t s = 0; s + 1 < parts; ++s) {
            std::vector<request> current = std::move(recvs);
            recvs.clear();
            if (s + 2 < parts) post_rs_recvs(s + 1);
            const auto g = seg(s + 1);
            std::span<T> target = data.subspan(g.begin, g.size);
            std::span<T> incoming(scratch_[s % 2].data(), g.size);
            for (std::size_t k = 0; k < current.size(); ++k) {
                dtfm::detail::await(current[k], options_, "ring_allreduce: reduce-scatter receive");
                auto into = piece(target, k);
                auto from = piece(incoming, k);
                for (std::size_t i = 0; i < into.size(); ++i) into[i] += from[i];
                if (s + 2 < parts) sends.push_back(t.isend(right, rs_tag, bytes(into)));
            }
        }
        for (auto& q : sends) dtfm::detail::await(q, options_, "ring_allreduce: reduce-scatter send");
        sends.clear();

        // This rank now holds segment r+1 reduced over every rank.
        const auto own = seg(parts - 1);
        if constexpr (std::same_as<Op, average>) {
            const T inv = T(1) / static_cast<T>(p);
            for (auto& v : data.subspan(own.begin, own.size)) v *= inv;
        }

        // All-gather: at step s, send segment r+1−s, receive segment r−s straight into data and
        // forward it at step s+1. Every receive lands in its own place, so all are posted at once.
        std::vector<std::vector<request>> gathered(parts - 1);
        for (std::size_t s = 0; s + 1 < parts; ++s) {
            const auto g = seg(s);
            std::span<T> into = data.subspan(g.begin, g.size);
            for (std::size_t k = 0; k < slices(g.size); ++k) gathered[s].push_back(t.irecv(left, ag_tag, bytes(piece(into, k))));
        }
        {
            std::span<T> mine = data.subspan(own.begin, own.size);
            for (std::size_t k = 0; k < slices(own.size); ++k) sends.push_back(t.isend(right, ag_tag, bytes(piece(mine, k))));
        }
        for (std::size_t s = 0; s + 1 < parts; ++s) {
            const auto g = seg(s);
            std::span<T> arrived = data.subspan(g.begin, g.size);
            for (std::size_t k = 0; k < gathered[s].size(); ++k) {
                dtfm::detail::await(gathered[s][k], options_, "ring_allreduce: all-gather receive");
                if (s + 2 < parts) sends.push_back(t.isend(right, ag_tag, bytes(piece(arrived, k))));
            }
        }
        for (auto& q : sends) dtfm::detail::await(q, options_, "ring_allreduce: all-gather send");
    }

    const options& settings() const noexcept { return options_; }
    traffic sent() const noexcept { return traffic_; }

private:
    options options_;
    traffic traffic_;
    std::vector<T> scratch_[2];
    std::unique_ptr<dtfm::detail::background_worker> worker_ = std::make_unique<dtfm::detail::background_worker>();
};

// For strategy::data_parallel, which applies its collective to a compressor: the ring moves full
// precision, so it takes only compress::identity.
template <class C>
    requires std::same_as<C, compress::identity>
using ring = ring_allreduce<float, average>;

}  // namespace dtfm::collective
