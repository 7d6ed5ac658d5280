// collective::compressed_allreduce<C>: the two-phase compressed all-reduce of CocktailSGD and of
// DeepSpeed's 1-bit Adam. Every rank serves one segment: (1) each worker sends C(its segment i +
// worker error) to rank i; (2) the server decodes, averages, adds its own server error, encodes
// once more and sends the result to every rank. What either encode drops is carried to the next
// call (error feedback at worker and server), so biased compressors (top-k, sign) still converge.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "dtfm/collective/operation.hpp"
#include "dtfm/collective/options.hpp"
#include "dtfm/compress/error_feedback.hpp"
#include "dtfm/concepts/collective.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/concepts/transport.hpp"

namespace dtfm::detail {

// compressed_allreduce applies error feedback itself: error_feedback<C> given as C is unwrapped.
template <class C>
struct without_feedback {
    using type = C;
};
template <class C>
struct without_feedback<compress::error_feedback<C>> {
    using type = C;
};

// Compressors whose positions come from (seed, step, chunk), such as randomk and cocktail, are
// told the call's step and the segment's index; the others ignore it.
template <class C>
void set_compression_context(C& c, std::uint64_t step, std::uint64_t chunk) {
    if constexpr (requires { c.set_context(step, chunk); }) c.set_context(step, chunk);
}
template <class C>
void set_compression_context(compress::error_feedback<C>& c, std::uint64_t step, std::uint64_t chunk) {
    set_compression_context(c.inner(), step, chunk);
}

}  // namespace dtfm::detail

namespace dtfm::collective {

// Every rank ends with the same values (the decoded server payloads), an estimate of the average;
// the error each rank keeps makes the running mean of the estimates exact. The buffer size is
// fixed by the first call (reset() forgets it with the errors). After a failed call (a timeout),
// the errors are in an unknown state: reset() before going on.
template <concepts::compressor C>
    requires std::same_as<typename C::value_type, float> && std::same_as<typename C::memory_space, host_space>
class compressed_allreduce {
public:
    using collective_concept = collective_tag;
    using value_type = float;
    using compressor_type = typename dtfm::detail::without_feedback<C>::type;

    explicit compressed_allreduce(compressor_type prototype = compressor_type(), options o = {})
        : prototype_(std::move(prototype)), options_(o) {
        dtfm::detail::check_options(o, "compressed_allreduce");
    }
    explicit compressed_allreduce(options o) : compressed_allreduce(compressor_type{}, o) {}

    template <concepts::transport Tr>
    operation allreduce(Tr& t, std::span<float> data) {
        return worker_->submit([this, &t, data] { allreduce_blocking(t, data); });
    }

    template <concepts::transport Tr>
    void allreduce_blocking(Tr& t, std::span<float> data) {
        const int p = t.size();
        if (p == 1 || data.empty()) return;
        size_for(data.size(), p, t.rank());
        const auto parts = static_cast<std::size_t>(p);
        const auto me = static_cast<std::size_t>(t.rank());
        const auto seg = [&](std::size_t i) { return dtfm::detail::segment_of(data.size(), parts, i); };
        const message_tag to_server = dtfm::detail::collective_tag_at(options_, 0);
        const message_tag from_server = dtfm::detail::collective_tag_at(options_, 1);
        using request = typename Tr::request_type;
        std::vector<request> sends, contributions(parts), results(parts);

        // Post every receive first: contributions to this rank's segment, results of the others.
        for (std::size_t i = 0; i < parts; ++i) {
            if (i == me) continue;
            contributions[i] = t.irecv(static_cast<int>(i), to_server, incoming_[i]);
            results[i] = t.irecv(static_cast<int>(i), from_server, results_in_[i]);
        }
        // Phase 1: encode and send segment by segment, starting after this rank, so one segment's
        // bytes are on the wire while the next is encoded, and the servers are not all hit at once.
        for (std::size_t d = 1; d < parts; ++d) {
            const std::size_t j = (me + d) % parts;
            const auto g = seg(j);
            dtfm::detail::set_compression_context(workers_[j], step_, j);
            const std::size_t bytes = workers_[j].encode(data.subspan(g.begin, g.size), outgoing_[j]);
            count(g.size, bytes);
            sends.push_back(t.isend(static_cast<int>(j), to_server, std::span<const std::byte>(outgoing_[j]).first(bytes)));
        }
        // Serve: average this rank's own values (exact) with every decoded contribution.
        const auto own = seg(me);
        std::span<float> mine = data.subspan(own.begin, own.size);
        std::copy(mine.begin(), mine.end(), sum_.begin());
        dtfm::detail::set_compression_context(decoder_, step_, me);
        for (std::size_t d = 1; d < parts; ++d) {
            const std::size_t i = (me + parts - d) % parts;
            const std::size_t got = dtfm::detail::await(contributions[i], options_, "compressed_allreduce: contribution");
            decoder_.decode(std::span<const std::byte>(incoming_[i]).first(got), decoded_);
            for (std::size_t k = 0; k < own.size; ++k) sum_[k] += decoded_[k];
        }
        const float inv = 1.0f / static_cast<float>(p);
        for (auto& v : sum_) v *= inv;
        // Phase 2: one encode of the average (with the server's error), sent to every rank; this
        // rank reads its own payload back, so all ranks hold exactly the same values.
        dtfm::detail::set_compression_context(server_, step_, me);
        const std::size_t result_bytes = server_.encode(sum_, result_out_);
        std::span<const std::byte> result(result_out_.data(), result_bytes);
        for (std::size_t d = 1; d < parts; ++d) {
            const std::size_t j = (me + d) % parts;
            count(own.size, result_bytes);
            sends.push_back(t.isend(static_cast<int>(j), from_server, result));
        }
        decoder_.decode(result, mine);
        for (std::size_t d = 1; d < parts; ++d) {
            const std::size_t i = (me + d) % parts;
            const auto g = seg(i);
            const std::size_t got = dtfm::detail::await(results[i], options_, "compressed_allreduce: result");
            dtfm::detail::set_compression_context(decoder_, step_, i);
            decoder_.decode(std::span<const std::byte>(results_in_[i]).first(got), data.subspan(g.begin, g.size));
        }
        for (auto& q : sends) dtfm::detail::await(q, options_, "compressed_allreduce: send");
        ++step_;
    }

    // Forgets the buffer size, the errors and the step (every rank must reset together).
    void reset() {
        size_ = 0;
        step_ = 0;
        workers_.clear();
    }

    traffic sent() const noexcept { return traffic_; }
    std::uint64_t step() const noexcept { return step_; }

    // The step and every error this rank carries, for checkpoints. Restoring needs the same rank
    // count; the buffers are sized by the next call, which must have the saved size.
    template <class Archive>
    void serialize(Archive& a) {
        std::uint64_t size = size_;
        a.value("step", step_);
        a.value("size", size);
        std::uint64_t parts = workers_.size();
        a.value("ranks", parts);
        if (Archive::loading) {
            workers_.assign(static_cast<std::size_t>(parts), compress::error_feedback<compressor_type>(prototype_));
            size_ = 0;
        }
        for (std::size_t i = 0; i < workers_.size(); ++i) {
            auto w = a.nested("worker" + std::to_string(i));
            workers_[i].serialize(w);
        }
        auto s = a.nested("server");
        server_.serialize(s);
        if (Archive::loading) restored_size_ = static_cast<std::size_t>(size);
    }
    const options& settings() const noexcept { return options_; }

    // The error this rank carries for segment i as a worker, or (i = own rank) as its server.
    std::span<const float> worker_error(std::size_t i) const { return workers_.at(i).residual(); }
    std::span<const float> server_error() const { return server_.residual(); }

private:
    void count(std::size_t values, std::size_t bytes) {
        traffic_.value_bytes += values * sizeof(float);
        traffic_.payload_bytes += bytes;
    }

    void size_for(std::size_t n, int p, int rank) {
        if (size_ == n && !workers_.empty() && workers_.size() == static_cast<std::size_t>(p)) return;
        if (restored_size_ != 0) {  // errors restored from a checkpoint: keep them, size the buffers
            if (restored_size_ != n || workers_.size() != static_cast<std::size_t>(p))
                throw error("compressed_allreduce: the checkpoint was taken with " + std::to_string(restored_size_) + " values on " +
                            std::to_string(workers_.size()) + " ranks");
            restored_size_ = 0;
            size_buffers(n, p, rank);
            return;
        }
        if (size_ != 0 && size_ != n)
            throw error("compressed_allreduce: " + std::to_string(n) + " values, this instance carries errors for " +
                        std::to_string(size_) + " (call reset() to change the buffer size, or use one instance per bucket)");
        workers_.assign(static_cast<std::size_t>(p), compress::error_feedback<compressor_type>(prototype_));
        server_ = compress::error_feedback<compressor_type>(prototype_);
        server_.reset();
        size_buffers(n, p, rank);
    }

    void size_buffers(std::size_t n, int p, int rank) {
        const auto parts = static_cast<std::size_t>(p), me = static_cast<std::size_t>(rank);
        size_ = n;
        decoder_ = prototype_;
        outgoing_.assign(parts, {});
        incoming_.assign(parts, {});
        results_in_.assign(parts, {});
        const auto own = dtfm::detail::segment_of(n, parts, me);
        for (std::size_t i = 0; i < parts; ++i) {
            const auto g = dtfm::detail::segment_of(n, parts, i);
            if (i == me) continue;
            outgoing_[i].resize(prototype_.max_payload_bytes(g.size));
            incoming_[i].resize(prototype_.max_payload_bytes(own.size));
            results_in_[i].resize(prototype_.max_payload_bytes(g.size));
        }
        result_out_.resize(prototype_.max_payload_bytes(own.size));
        sum_.resize(own.size);
        decoded_.resize(own.size);
    }

    compressor_type prototype_;
    options options_;
    std::size_t size_ = 0, restored_size_ = 0;
    std::uint64_t step_ = 0;
    traffic traffic_;
    std::vector<compress::error_feedback<compressor_type>> workers_;
    compress::error_feedback<compressor_type> server_;
    compressor_type decoder_;
    std::vector<std::vector<std::byte>> outgoing_, incoming_, results_in_;
    std::vector<std::byte> result_out_;
    std::vector<float> sum_, decoded_;
    std::unique_ptr<dtfm::detail::background_worker> worker_ = std::make_unique<dtfm::detail::background_worker>();
};

}  // namespace dtfm::collective
