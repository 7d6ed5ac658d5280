// Sends posted to an inner transport at a chosen time, by one scheduler thread: the mechanism
// behind throttled<T> (a message leaves when its link is free and arrives one latency later) and
// faulty<T> (delayed messages). Requests of the wrapping transports are deferred_request<T>.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <thread>
#include <utility>
#include <vector>

#include "dtfm/concepts/transport.hpp"
#include "dtfm/detail/deadline.hpp"

namespace dtfm::detail {

using deferred_clock = std::chrono::steady_clock;

template <class T>
struct deferred_op {
    enum class phase { waiting, posted, dropped, cancelled, failed };

    std::mutex mutex;
    std::condition_variable changed;
    phase state = phase::waiting;
    std::optional<typename T::request_type> inner;  // once posted
    std::optional<typename T::request_type> inner_stamp;
    std::exception_ptr failure;
    std::size_t dropped_bytes = 0;                   // what a dropped send reports as sent

    // What to post: the sender's bytes, or `owned` when the wrapper keeps its own copy.
    std::shared_ptr<T> transport;
    int peer = 0;
    message_tag tag{};
    std::span<const std::byte> bytes;
    std::vector<std::byte> owned;
    // When set, a small message carrying this value goes first (throttled<T>'s arrival time).
    std::optional<std::int64_t> stamp;

    void post() {
        std::lock_guard lock(mutex);
        if (state != phase::waiting) return;
        try {
            if (stamp) inner_stamp.emplace(transport->isend(peer, tag, std::as_bytes(std::span(&*stamp, 1))));
            inner.emplace(transport->isend(peer, tag, owned.empty() ? bytes : std::span<const std::byte>(owned)));
            state = phase::posted;
        } catch (...) {
            failure = std::current_exception();
            state = phase::failed;
        }
        transport.reset();
        changed.notify_all();
    }
};

// One thread that posts each op at its time, earliest first.
template <class T>
class deferred_scheduler {
public:
    deferred_scheduler() : thread_([this](std::stop_token stop) { run(stop); }) {}
    deferred_scheduler(const deferred_scheduler&) = delete;
    deferred_scheduler& operator=(const deferred_scheduler&) = delete;
    ~deferred_scheduler() {
        thread_.request_stop();
        {
            std::lock_guard lock(mutex_);
        }
        wake_.notify_all();
    }

    void schedule(deferred_clock::time_point at, std::shared_ptr<deferred_op<T>> op) {
        {
            std::lock_guard lock(mutex_);
            queue_.emplace(at, std::move(op));
        }
        wake_.notify_all();
    }

private:
    void run(std::stop_token stop) {
        std::unique_lock lock(mutex_);
        while (!stop.stop_requested()) {
            if (queue_.empty()) {
                wake_.wait(lock, [&] { return stop.stop_requested() || !queue_.empty(); });
                continue;
            }
            const auto at = queue_.begin()->first;
            if (deferred_clock::now() < at) {
                wake_.wait_until(lock, at);
                continue;
            }
            auto op = std::move(queue_.begin()->second);
            queue_.erase(queue_.begin());
            lock.unlock();
            op->post();
            lock.lock();
        }
    }

    std::mutex mutex_;
    std::condition_variable wake_;
    std::multimap<deferred_clock::time_point, std::shared_ptr<deferred_op<T>>> queue_;
    std::jthread thread_;  // last: started after the queue exists, joined before it goes
};

}  // namespace dtfm::detail

namespace dtfm::transport {

// The request of a wrapping transport: completes when the inner request (once posted) does.
// Destroying it before its send was posted cancels the send.
template <class T>
class deferred_request {
    using op_type = dtfm::detail::deferred_op<T>;
    using phase = typename op_type::phase;

public:
    deferred_request() = default;
    deferred_request(deferred_request&&) noexcept = default;
    deferred_request& operator=(deferred_request&& o) noexcept {
        if (this != &o) {
            cancel();
            op_ = std::move(o.op_);
            scheduler_ = std::move(o.scheduler_);
        }
        return *this;
    }
    deferred_request(const deferred_request&) = delete;
    deferred_request& operator=(const deferred_request&) = delete;
    ~deferred_request() { cancel(); }

    // A request for an operation already handed to the inner transport (a receive, an
    // undelayed send).
    static deferred_request posted(typename T::request_type inner) {
        deferred_request r;
        r.op_ = std::make_shared<op_type>();
        r.op_->inner.emplace(std::move(inner));
        r.op_->state = phase::posted;
        return r;
    }

    // A send that was dropped on purpose: it reports `bytes` as sent, as a lossy link would.
    static deferred_request dropped(std::size_t bytes) {
        deferred_request r;
        r.op_ = std::make_shared<op_type>();
        r.op_->dropped_bytes = bytes;
        r.op_->state = phase::dropped;
        return r;
    }

    // A send posted now, on the caller's thread (the op may own a private copy of the bytes).
    static deferred_request immediate(std::shared_ptr<op_type> op) {
        deferred_request r;
        r.op_ = std::move(op);
        r.op_->post();
        return r;
    }

    // A send posted by `scheduler` at `at`.
    static deferred_request scheduled(std::shared_ptr<dtfm::detail::deferred_scheduler<T>> scheduler,
                                      dtfm::detail::deferred_clock::time_point at, std::shared_ptr<op_type> op) {
        deferred_request r;
        r.op_ = op;
        r.scheduler_ = scheduler;
        scheduler->schedule(at, std::move(op));
        return r;
    }

    std::size_t wait() {
        std::unique_lock lock(op_->mutex);
        op_->changed.wait(lock, [&] { return op_->state != phase::waiting; });
        if (auto done = settled()) return *done;
        lock.unlock();
        if (op_->inner_stamp) op_->inner_stamp->wait();
        return op_->inner->wait();
    }

    bool test() {
        std::unique_lock lock(op_->mutex);
        if (op_->state == phase::waiting) return false;
        if (settled()) return true;
        lock.unlock();
        return (!op_->inner_stamp || op_->inner_stamp->test()) && op_->inner->test();
    }

    bool wait_for(std::chrono::nanoseconds timeout) {
        const auto deadline = dtfm::detail::deadline_after<dtfm::detail::deferred_clock>(timeout);
        std::unique_lock lock(op_->mutex);
        if (!op_->changed.wait_until(lock, deadline, [&] { return op_->state != phase::waiting; })) return false;
        if (settled()) return true;
        lock.unlock();
        auto left = [&] {
            return std::max(deadline - dtfm::detail::deferred_clock::now(), dtfm::detail::deferred_clock::duration{});
        };
        if (op_->inner_stamp && !op_->inner_stamp->wait_for(left())) return false;
        return op_->inner->wait_for(left());
    }

private:
    // With the op's lock held and its state past waiting: the result when there is no inner request.
    std::optional<std::size_t> settled() {
        if (op_->state == phase::failed) std::rethrow_exception(op_->failure);
        if (op_->state == phase::dropped) return op_->dropped_bytes;
        return std::nullopt;
    }

    void cancel() noexcept {
        if (!op_) return;
        std::lock_guard lock(op_->mutex);
        if (op_->state == phase::waiting) {
            op_->state = phase::cancelled;
            op_->transport.reset();
        }
    }

    std::shared_ptr<op_type> op_;
    std::shared_ptr<dtfm::detail::deferred_scheduler<T>> scheduler_;  // outlives the ops it holds
};

}  // namespace dtfm::transport
