// faulty<T>: injects the failures of a real network into any transport, reproducibly from a seed:
// dropped messages (the sender believes they left), delayed messages, corrupted messages (one bit
// flipped in a private copy) and a rank that dies (after some sends, everything it sends is lost).
// Put checked<> above it to see corruption detected.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dtfm/concepts/transport.hpp"
#include "dtfm/detail/deferred_send.hpp"
#include "dtfm/error.hpp"

namespace dtfm::transport {

struct fault_plan {
    std::uint64_t seed = 1;
    double drop_rate = 0;     // probability a message is lost
    double corrupt_rate = 0;  // probability one of its bits is flipped
    double delay_rate = 0;    // probability it is held back by `delay`
    std::chrono::nanoseconds delay{0};
    int dead_rank = -1;                  // rank (in the group faulty<> was built on) that dies ...
    std::uint64_t dead_after_sends = 0;  // ... once it has sent this many messages
};

struct fault_counts {
    std::uint64_t sent = 0, dropped = 0, corrupted = 0, delayed = 0;
};

namespace detail_faulty {

// splitmix64: a counter-based generator, so the faults of message n of rank r do not depend on
// thread timing or on other ranks.
inline std::uint64_t mix(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
inline double unit(std::uint64_t x) { return static_cast<double>(mix(x) >> 11) * 0x1.0p-53; }

}  // namespace detail_faulty

template <concepts::transport T>
class faulty {
    struct shared_state {
        fault_plan plan;
        std::shared_ptr<dtfm::detail::deferred_scheduler<T>> scheduler =
            std::make_shared<dtfm::detail::deferred_scheduler<T>>();
        int root_rank = 0;
        fault_counts counts;
    };

public:
    using transport_concept = transport_tag;
    using memory_space = typename T::memory_space;
    using request_type = deferred_request<T>;

    faulty(T inner, fault_plan plan) : inner_(std::make_shared<T>(std::move(inner))), state_(std::make_shared<shared_state>()) {
        for (double p : {plan.drop_rate, plan.corrupt_rate, plan.delay_rate}) {
            if (!(p >= 0 && p <= 1)) throw config_error("faulty: rates must lie in [0, 1]");
        }
        state_->plan = plan;
        state_->root_rank = inner_->rank();
    }

    int rank() const { return inner_->rank(); }
    int size() const { return inner_->size(); }
    const fault_counts& counts() const { return state_->counts; }
    bool dead() const {
        const auto& p = state_->plan;
        return state_->root_rank == p.dead_rank && state_->counts.sent >= p.dead_after_sends;
    }

    request_type isend(int peer, message_tag tag, std::span<const std::byte> bytes) {
        if (peer < 0 || peer >= size()) {
            throw transport_error("faulty::isend: peer " + std::to_string(peer) + " is not in a group of " +
                                  std::to_string(size()));
        }
        auto& s = *state_;
        const bool is_dead = dead();
        const std::uint64_t n = s.counts.sent++;
        if (is_dead) {
            ++s.counts.dropped;
            return request_type::dropped(bytes.size());
        }
        const std::uint64_t key = s.plan.seed ^ (static_cast<std::uint64_t>(s.root_rank) << 40) ^ (n * 4);
        if (detail_faulty::unit(key) < s.plan.drop_rate) {
            ++s.counts.dropped;
            return request_type::dropped(bytes.size());
        }
        auto op = std::make_shared<dtfm::detail::deferred_op<T>>();
        op->transport = inner_;
        op->peer = peer;
        op->tag = tag;
        op->bytes = bytes;
        if (!bytes.empty() && detail_faulty::unit(key + 1) < s.plan.corrupt_rate) {
            ++s.counts.corrupted;
            op->owned.assign(bytes.begin(), bytes.end());
            const std::uint64_t bit = detail_faulty::mix(key + 2) % (bytes.size() * 8);
            op->owned[bit / 8] ^= std::byte{static_cast<unsigned char>(1u << (bit % 8))};
        }
        if (detail_faulty::unit(key + 3) < s.plan.delay_rate) {
            ++s.counts.delayed;
            const auto at = dtfm::detail::deferred_clock::now() +
                            std::chrono::duration_cast<dtfm::detail::deferred_clock::duration>(s.plan.delay);
            return request_type::scheduled(s.scheduler, at, std::move(op));
        }
        return request_type::immediate(std::move(op));
    }

    request_type irecv(int peer, message_tag tag, std::span<std::byte> buffer) {
        return request_type::posted(inner_->irecv(peer, tag, buffer));
    }

    // The sub-group shares this group's plan, counters and dead rank.
    faulty split(int color, int key) { return faulty(inner_->split(color, key), state_); }

private:
    faulty(T inner, std::shared_ptr<shared_state> s) : inner_(std::make_shared<T>(std::move(inner))), state_(std::move(s)) {}

    std::shared_ptr<T> inner_;
    std::shared_ptr<shared_state> state_;
};

}  // namespace dtfm::transport
