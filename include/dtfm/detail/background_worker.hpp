// detail::background_worker: one thread that runs queued tasks in order, and task_handle, the
// completion handle of a task (collective::operation). The collectives run their calls on one, so
// the caller computes while the bytes move; transport::staged posts its device sends on one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "dtfm/detail/deadline.hpp"

namespace dtfm::detail {

struct operation_state {
    std::mutex mutex;
    std::condition_variable done_changed;
    bool done = false;
    std::exception_ptr failure;

    void finish(std::exception_ptr e) {
        {
            std::lock_guard lock(mutex);
            done = true;
            failure = std::move(e);
        }
        done_changed.notify_all();
    }
};

// The completion handle of a task: wait() blocks until it finished and rethrows its failure (every
// wait does); test() never blocks; wait_for(d) returns false when d passed first. An empty
// (default-constructed or moved-from) handle counts as done.
class task_handle {
public:
    task_handle() = default;
    explicit task_handle(std::shared_ptr<operation_state> s) : state_(std::move(s)) {}

    void wait() {
        if (!state_) return;
        std::unique_lock lock(state_->mutex);
        state_->done_changed.wait(lock, [&] { return state_->done; });
        if (state_->failure) std::rethrow_exception(state_->failure);
    }

    bool test() {
        if (!state_) return true;
        std::lock_guard lock(state_->mutex);
        return state_->done;
    }

    bool wait_for(std::chrono::nanoseconds d) {
        if (!state_) return true;
        std::unique_lock lock(state_->mutex);
        return state_->done_changed.wait_until(lock, deadline_after(d), [&] { return state_->done; });
    }

private:
    std::shared_ptr<operation_state> state_;
};

// One thread, started on the first submit, runs tasks in submission order: a collective's calls
// must run in the same order on every rank, and its state (residuals, step counters) is touched
// by this thread only; transport::staged posts its sends in order on one. The destructor lets
// queued tasks finish (they fail by timeout if a peer is gone) and joins.
class background_worker {
public:
    background_worker() = default;
    background_worker(const background_worker&) = delete;
    background_worker& operator=(const background_worker&) = delete;

    ~background_worker() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        queue_changed_.notify_all();
        if (thread_.joinable()) thread_.join();
    }

    task_handle submit(std::function<void()> task) {
        auto state = std::make_shared<operation_state>();
        {
            std::lock_guard lock(mutex_);
            if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
            queue_.emplace_back(std::move(task), state);
        }
        queue_changed_.notify_one();
        return task_handle(std::move(state));
    }

private:
    void run() {
        for (;;) {
            std::pair<std::function<void()>, std::shared_ptr<operation_state>> job;
            {
                std::unique_lock lock(mutex_);
                queue_changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
                if (queue_.empty()) return;
                job = std::move(queue_.front());
                queue_.pop_front();
            }
            std::exception_ptr failure;
            try {
                job.first();
            } catch (...) {
                failure = std::current_exception();
            }
            job.second->finish(std::move(failure));
        }
    }

    std::mutex mutex_;
    std::condition_variable queue_changed_;
    std::deque<std::pair<std::function<void()>, std::shared_ptr<operation_state>>> queue_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace dtfm::detail
