// collective::compressed_allreduce<C>: the two-phase compressed all-reduce of CocktailSGD and of
// DeepSpeed's 1-bit Adam. Every rank serves one segment: (1) each worker sends C(its segment i +
// worker error) to rank i; (2) the server decodes, averages, adds its own server error, encodes
// once more and sends the result to every rank. What either encode drops is carried to the next
// call (error feedback at worker and server), so biased compressors (top-k, sign) still converge.
// Segments move in slices (options::slice_bytes of values, each its own payload and error), so a
// slice is on the wire while the next is encoded, and a server averages and answers slice by slice.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dtfm/collective/operation.hpp"
#include "dtfm/collective/options.hpp"
#include "dtfm/compress/error_feedback.hpp"
#include "dtfm/concepts/collective.hpp"
#include "dtfm/concepts/compressor.hpp"
#include "dtfm/concepts/transport.hpp"
#include "dtfm/error.hpp"

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
// told the call's step and the slice's chunk id; the others ignore it.
template <class C>
void set_compression_context(C& c, std::uint64_t step, std::uint64_t chunk) {
    if constexpr (requires { c.set_context(step, chunk); }) c.set_context(step, chunk);
}
template <class C>
void set_compression_context(compress::error_feedback<C>& c, std::uint64_t step, std::uint64_t chunk) {
    set_compression_context(c.inner(), step, chunk);
}

// The requests of one call, kept between calls (per transport type) so their vectors are not
// allocated again.
struct compressed_requests_base {
    virtual ~compressed_requests_base() = default;
};
template <class Request>
struct compressed_requests : compressed_requests_base {
    std::vector<Request> contributions, results, sends;
    // Drops every request; a pending one is cancelled (its buffer is never touched afterwards).
    void clear() noexcept {
        contributions.clear();
        results.clear();
        sends.clear();
    }
};

}  // namespace dtfm::detail

namespace dtfm::collective {

// Every rank ends with the same values (the decoded server payloads), an estimate of the average;
// the error each rank keeps makes the running mean of the estimates exact. The buffer size is
// fixed by the first call (reset() forgets it with the errors). After a failed call (a timeout),
// the errors are in an unknown state: reset() before going on. Every rank must use the same
// options (the slice size fixes the payloads).
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

    // One thread drives three streams of work, doing whichever can run: encoding this rank's
    // slices for the other servers (always possible), averaging the contributions to its own
    // segment in a fixed order (so the result never depends on arrival order) and answering each
    // slice once all of it is in, and decoding the other servers' results. It blocks only when
    // none of them can move, for at most options::timeout without progress.
    template <concepts::transport Tr>
    void allreduce_blocking(Tr& t, std::span<float> data) {
        const int p = t.size();
        if (p == 1 || data.empty()) return;
        size_for(data.size(), p, t.rank());
        using request = typename Tr::request_type;
        auto& q = requests_for<request>();
        struct clear_on_exit {
            dtfm::detail::compressed_requests<request>& q;
            ~clear_on_exit() { q.clear(); }
        } guard{q};

        const auto parts = static_cast<std::size_t>(p);
        const auto me = static_cast<std::size_t>(t.rank());
        const std::size_t slices = slices_;
        const message_tag to_server = dtfm::detail::collective_tag_at(options_, 0);
        const message_tag from_server = dtfm::detail::collective_tag_at(options_, 1);
        q.contributions.resize(parts * slices);
        q.results.resize(parts * slices);
        q.sends.reserve(2 * (parts - 1) * slices);

        // Post every receive first, slice by slice: messages of one (peer, tag) arrive in send
        // order, so receive k of a peer matches that peer's slice k.
        for (std::size_t k = 0; k < slices; ++k) {
            for (std::size_t i = 0; i < parts; ++i) {
                if (i == me) continue;
                q.contributions[slot(i, k)] = t.irecv(static_cast<int>(i), to_server, incoming_[slot(i, k)]);
                q.results[slot(i, k)] = t.irecv(static_cast<int>(i), from_server, results_in_[slot(i, k)]);
            }
        }

        std::size_t encoded = 0;                    // worker slices sent, of (parts - 1) · slices
        std::size_t serve_slice = 0, serve_peer = 1;  // next contribution: slice, distance back
        std::vector<std::size_t>& decoded = result_cursor_;
        std::fill(decoded.begin(), decoded.end(), std::size_t{0});
        std::size_t results_left = (parts - 1) * slices;
        const float inv = 1.0f / static_cast<float>(p);
        auto last_progress = std::chrono::steady_clock::now();

        // A contribution to this rank's segment: decode into the running sum in the fixed order
        // (me − 1, me − 2, …); the last one also adds this rank's own values and scales.
        auto serve_one = [&](std::size_t got) {
            const std::size_t k = serve_slice, i = (me + parts - serve_peer) % parts;
            const auto g = slice_of(me, k);
            std::span<float> sum(sum_.data(), g.size);
            const std::span<const float> own = data.subspan(g.begin, g.size);
            dtfm::detail::set_compression_context(decoder_, step_, chunk(me, k));
            const std::span<const std::byte> payload = std::span<const std::byte>(incoming_[slot(i, k)]).first(got);
            const bool first = serve_peer == 1, last = serve_peer == parts - 1;
            if (first) {
                decoder_.decode(payload, sum);
                if (last)
                    for (std::size_t v = 0; v < g.size; ++v) sum[v] = (sum[v] + own[v]) * inv;
            } else if constexpr (compress::scatter_decoder<compressor_type>) {
                // A sparse payload adds at its kept positions only: no decoded slice to fill and add.
                decoder_.decode_scatter(payload, sum, [](float& s, float d) { s += d; });
                if (last)
                    for (std::size_t v = 0; v < g.size; ++v) sum[v] = (sum[v] + own[v]) * inv;
            } else {
                decoder_.decode(payload, std::span<float>(scratch_.data(), g.size));
                if (last)
                    for (std::size_t v = 0; v < g.size; ++v) sum[v] = (sum[v] + scratch_[v] + own[v]) * inv;
                else
                    for (std::size_t v = 0; v < g.size; ++v) sum[v] += scratch_[v];
            }
            if (!last) {
                ++serve_peer;
                return;
            }
            // The slice's average is complete: one encode (with the server's error) for every
            // rank; this rank reads its own payload back, so all ranks hold the same values.
            auto& server = servers_[k];
            dtfm::detail::set_compression_context(server, step_, chunk(me, k));
            const std::size_t bytes = server.encode(std::span<const float>(sum), result_out_[k]);
            const std::span<const std::byte> result(result_out_[k].data(), bytes);
            for (std::size_t d = 1; d < parts; ++d) {
                count(g.size, bytes);
                q.sends.push_back(t.isend(static_cast<int>((me + d) % parts), from_server, result));
            }
            decoder_.decode(result, data.subspan(g.begin, g.size));
            ++serve_slice;
            serve_peer = 1;
        };
        auto decode_result = [&](std::size_t i, std::size_t got) {
            const std::size_t k = decoded[i]++;
            const auto g = slice_of(i, k);
            dtfm::detail::set_compression_context(decoder_, step_, chunk(i, k));
            decoder_.decode(std::span<const std::byte>(results_in_[slot(i, k)]).first(got), data.subspan(g.begin, g.size));
            --results_left;
        };
        auto contribution = [&]() -> request& {
            return q.contributions[slot((me + parts - serve_peer) % parts, serve_slice)];
        };

        const std::size_t encodes = (parts - 1) * slices;
        while (encoded < encodes || serve_slice < slices || results_left > 0) {
            bool moved = false;
            while (serve_slice < slices && contribution().test()) {
                serve_one(contribution().wait());
                moved = true;
            }
            for (std::size_t i = 0; i < parts; ++i) {
                if (i == me) continue;
                while (decoded[i] < slices && q.results[slot(i, decoded[i])].test()) {
                    decode_result(i, q.results[slot(i, decoded[i])].wait());
                    moved = true;
                }
            }
            if (encoded < encodes) {
                // Slice by slice across the servers, starting after this rank, so every server
                // gets its first slice early and the servers are not all hit at once.
                const std::size_t k = encoded / (parts - 1), j = (me + 1 + encoded % (parts - 1)) % parts;
                const auto g = slice_of(j, k);
                auto& w = workers_[slot(j, k)];
                dtfm::detail::set_compression_context(w, step_, chunk(j, k));
                const std::size_t bytes = w.encode(data.subspan(g.begin, g.size), outgoing_[slot(j, k)]);
                count(g.size, bytes);
                q.sends.push_back(t.isend(static_cast<int>(j), to_server,
                                          std::span<const std::byte>(outgoing_[slot(j, k)]).first(bytes)));
                ++encoded;
                moved = true;
            }
            const auto now = std::chrono::steady_clock::now();
            if (moved) {
                last_progress = now;
                continue;
            }
            // Nothing can move: wait a little on the next item in line, then look at all again.
            const char* what = "compressed_allreduce: result";
            request* next = nullptr;
            if (serve_slice < slices) {
                next = &contribution();
                what = "compressed_allreduce: contribution";
            } else {
                for (std::size_t i = 0; i < parts && next == nullptr; ++i)
                    if (i != me && decoded[i] < slices) next = &q.results[slot(i, decoded[i])];
            }
            const auto left = options_.timeout - (now - last_progress);
            if (left <= std::chrono::nanoseconds::zero()) {
                const auto ms = std::chrono::duration<double, std::milli>(options_.timeout).count();
                throw timeout_error(std::string(what) + " timed out after " + std::to_string(ms) + " ms");
            }
            (void)next->wait_for(std::min<std::chrono::nanoseconds>(left, poll_interval));
        }
        for (auto& s : q.sends) dtfm::detail::await(s, options_, "compressed_allreduce: send");
        ++step_;
    }

    // Forgets the buffer size, the errors and the step (every rank must reset together).
    void reset() {
        size_ = 0;
        step_ = 0;
        restored_size_ = 0;
        workers_.clear();
        servers_.clear();
    }

    traffic sent() const noexcept { return traffic_; }
    std::uint64_t step() const noexcept { return step_; }
    // Slices per segment for the current buffer size (0 before the first call).
    std::size_t slices() const noexcept { return slices_; }

    // The step and every error this rank carries, for checkpoints. Restoring needs the same rank
    // count and slice size; the buffers are sized by the next call, which must have the saved size.
    template <class Archive>
    void serialize(Archive& a) {
        std::uint64_t size = size_;
        std::uint64_t slices = servers_.size();
        std::uint64_t parts = slices == 0 ? 0 : workers_.size() / slices;
        a.value("step", step_);
        a.value("size", size);
        a.value("ranks", parts);
        a.value("slices", slices);
        if (Archive::loading) {
            const bool sane = slices == 0 ? parts == 0
                                          : parts <= (std::uint64_t{1} << 24) && slices <= (std::uint64_t{1} << 28) &&
                                                parts * slices <= (std::uint64_t{1} << 28);
            if (!sane)
                throw wire_error(wire_error::reason::bad_value, "compressed_allreduce checkpoint: " + std::to_string(parts) +
                                                                    " ranks of " + std::to_string(slices) + " slices");
            workers_.assign(static_cast<std::size_t>(parts * slices), compress::error_feedback<compressor_type>(prototype_));
            servers_.assign(static_cast<std::size_t>(slices), compress::error_feedback<compressor_type>(prototype_));
            size_ = 0;
            slices_ = 0;
        }
        for (std::size_t i = 0; i < static_cast<std::size_t>(parts); ++i) {
            for (std::size_t k = 0; k < static_cast<std::size_t>(slices); ++k) {
                auto w = a.nested("worker" + std::to_string(i) + "." + std::to_string(k));
                workers_[i * static_cast<std::size_t>(slices) + k].serialize(w);
            }
        }
        for (std::size_t k = 0; k < static_cast<std::size_t>(slices); ++k) {
            auto s = a.nested("server" + std::to_string(k));
            servers_[k].serialize(s);
        }
        if (Archive::loading) restored_size_ = static_cast<std::size_t>(size);
    }
    const options& settings() const noexcept { return options_; }

    // The error this rank carries for slice k of segment i as a worker, or (i = own rank) as its
    // server.
    std::span<const float> worker_error(std::size_t i, std::size_t k = 0) const { return workers_.at(i * slices_ + k).residual(); }
    std::span<const float> server_error(std::size_t k = 0) const { return servers_.at(k).residual(); }

    // Everything this rank's compressors have held back so far, laid out like the all-reduced
    // buffer: on the other ranks' segments its worker error (its own contribution, not yet sent);
    // on its own segment its server error (the part of the average it has not yet sent back —
    // its own contribution enters that average uncompressed). out must have the buffer's size.
    void worker_residual(std::span<float> out) const {
        if (out.size() != size_)
            throw error("compressed_allreduce::worker_residual: " + std::to_string(out.size()) + " values, the buffer has " +
                        std::to_string(size_));
        for (std::size_t i = 0; i < parts_; ++i) {
            for (std::size_t k = 0; k < slices_; ++k) {
                const auto g = slice_of(i, k);
                const std::span<const float> r = i == me_ ? servers_[k].residual() : workers_[slot(i, k)].residual();
                float* to = out.data() + g.begin;
                if (r.size() == g.size) std::copy(r.begin(), r.end(), to);
                else std::fill(to, to + g.size, 0.0f);
            }
        }
    }

private:
    // Long enough not to spin, short enough that a ready item waits little behind the one watched.
    static constexpr std::chrono::microseconds poll_interval{500};

    std::size_t slot(std::size_t segment, std::size_t k) const noexcept { return segment * slices_ + k; }
    std::uint64_t chunk(std::size_t segment, std::size_t k) const noexcept { return segment * slices_ + k; }
    dtfm::detail::segment slice_of(std::size_t segment, std::size_t k) const noexcept {
        const auto g = dtfm::detail::segment_of(size_, parts_, segment);
        const auto s = dtfm::detail::segment_of(g.size, slices_, k);
        return {g.begin + s.begin, s.size};
    }

    template <class Request>
    dtfm::detail::compressed_requests<Request>& requests_for() {
        using requests = dtfm::detail::compressed_requests<Request>;
        if (auto* r = dynamic_cast<requests*>(requests_.get())) return *r;
        requests_ = std::make_unique<requests>();
        return static_cast<requests&>(*requests_);
    }

    void count(std::size_t values, std::size_t bytes) {
        traffic_.value_bytes += values * sizeof(float);
        traffic_.payload_bytes += bytes;
    }

    // Slices per segment: every segment is cut into the same number, that of the largest one.
    std::size_t slices_for(std::size_t n, std::size_t parts) const {
        const std::size_t per_slice = std::max<std::size_t>(1, options_.slice_bytes / sizeof(float));
        const std::size_t largest = (n + parts - 1) / parts;
        return std::max<std::size_t>(1, (largest + per_slice - 1) / per_slice);
    }

    void size_for(std::size_t n, int p, int rank) {
        const auto parts = static_cast<std::size_t>(p);
        if (size_ == n && parts_ == parts && !servers_.empty()) return;
        const std::size_t slices = slices_for(n, parts);
        if (restored_size_ != 0) {  // errors restored from a checkpoint: keep them, size the buffers
            if (restored_size_ != n || servers_.size() != slices || workers_.size() != parts * slices)
                throw error("compressed_allreduce: the checkpoint was taken with " + std::to_string(restored_size_) + " values on " +
                            std::to_string(servers_.empty() ? 0 : workers_.size() / servers_.size()) + " ranks in " +
                            std::to_string(servers_.size()) + " slices; this call has " + std::to_string(n) + " values on " +
                            std::to_string(parts) + " ranks in " + std::to_string(slices) + " slices");
            restored_size_ = 0;
            size_buffers(n, parts, slices, static_cast<std::size_t>(rank));
            return;
        }
        if (size_ != 0 && size_ != n)
            throw error("compressed_allreduce: " + std::to_string(n) + " values, this instance carries errors for " +
                        std::to_string(size_) + " (call reset() to change the buffer size, or use one instance per bucket)");
        workers_.assign(parts * slices, compress::error_feedback<compressor_type>(prototype_));
        servers_.assign(slices, compress::error_feedback<compressor_type>(prototype_));
        size_buffers(n, parts, slices, static_cast<std::size_t>(rank));
    }

    void size_buffers(std::size_t n, std::size_t parts, std::size_t slices, std::size_t me) {
        size_ = n;
        parts_ = parts;
        me_ = me;
        slices_ = slices;
        decoder_ = prototype_;
        outgoing_.assign(parts * slices, {});
        incoming_.assign(parts * slices, {});
        results_in_.assign(parts * slices, {});
        result_out_.assign(slices, {});
        std::size_t widest = 0;
        for (std::size_t i = 0; i < parts; ++i) {
            for (std::size_t k = 0; k < slices; ++k) {
                const std::size_t theirs = slice_of(i, k).size, mine = slice_of(me, k).size;
                widest = std::max(widest, theirs);
                if (i == me) {
                    result_out_[k].resize(prototype_.max_payload_bytes(mine));
                    continue;
                }
                outgoing_[slot(i, k)].resize(prototype_.max_payload_bytes(theirs));
                incoming_[slot(i, k)].resize(prototype_.max_payload_bytes(mine));
                results_in_[slot(i, k)].resize(prototype_.max_payload_bytes(theirs));
            }
        }
        sum_.resize(widest);
        scratch_.resize(parts > 2 && !compress::scatter_decoder<compressor_type> ? widest : 0);
        result_cursor_.assign(parts, 0);
    }

    compressor_type prototype_;
    options options_;
    std::size_t size_ = 0, restored_size_ = 0, parts_ = 0, slices_ = 0, me_ = 0;
    std::uint64_t step_ = 0;
    traffic traffic_;
    // Indexed segment · slices + slice; the entries of this rank's own segment stay empty.
    std::vector<compress::error_feedback<compressor_type>> workers_;
    std::vector<compress::error_feedback<compressor_type>> servers_;  // one per slice of this rank's segment
    compressor_type decoder_;
    std::vector<std::vector<std::byte>> outgoing_, incoming_, results_in_, result_out_;
    std::vector<float> sum_, scratch_;  // one slice: the running average, and a decoded dense contribution
    std::vector<std::size_t> result_cursor_;  // result slices decoded, per server
    std::unique_ptr<dtfm::detail::compressed_requests_base> requests_;
    std::unique_ptr<dtfm::detail::background_worker> worker_ = std::make_unique<dtfm::detail::background_worker>();
};

}  // namespace dtfm::collective
