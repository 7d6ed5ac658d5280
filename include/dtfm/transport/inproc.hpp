// transport::inproc: N ranks as threads of one process, with MPI's matching rules (messages with
// the same source, channel and id arrive in send order; receives match in posting order). It is
// the transport of every multi-rank unit test, and runs examples on one machine without mpirun.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dtfm/concepts/transport.hpp"
#include "dtfm/detail/deadline.hpp"
#include "dtfm/error.hpp"
#include "dtfm/spaces.hpp"

namespace dtfm::detail {

// One send or receive. Completed once, by whichever thread matches it, under its own lock.
struct inproc_op {
    std::mutex mutex;
    std::condition_variable done_cv;
    bool done = false;
    std::size_t bytes = 0;
    std::exception_ptr failure;

    void complete(std::size_t n, std::exception_ptr e = nullptr) {
        {
            std::lock_guard lock(mutex);
            done = true;
            bytes = n;
            failure = std::move(e);
        }
        done_cv.notify_all();
    }
};

// A message sent before its receive was posted. Small ones are copied (eager); large ones are
// borrowed from the sender, whose send completes when a receive copies them (rendezvous), so a
// large message is copied once and nothing is allocated for it.
struct inproc_message {
    std::uint64_t comm;
    int source;
    message_tag tag;
    std::vector<std::byte> copied;
    std::span<const std::byte> borrowed;
    std::shared_ptr<inproc_op> send_op;  // set when borrowed

    std::span<const std::byte> bytes() const { return send_op ? borrowed : std::span<const std::byte>(copied); }
};

struct inproc_posted_receive {
    std::uint64_t comm;
    int source;
    message_tag tag;
    std::span<std::byte> buffer;
    std::shared_ptr<inproc_op> op;
};

// What one rank (a thread) has been sent and has not yet received, and the receives it posted.
struct inproc_mailbox {
    std::mutex mutex;
    std::deque<inproc_message> unexpected;
    std::list<inproc_posted_receive> posted;
};

// A pending split of one group: every member deposits (color, key); the last one forms the groups.
struct inproc_split {
    std::vector<int> colors, keys;
    int arrived = 0;
    int collected = 0;
    bool formed = false;
    std::vector<std::uint64_t> comm_of;  // per parent rank
    std::vector<std::shared_ptr<const std::vector<int>>> members_of;
    std::vector<int> rank_of;
};

inline std::exception_ptr inproc_aborted_error(const std::exception_ptr& reason) {
    std::string why = "another rank failed";
    try {
        if (reason) std::rethrow_exception(reason);
    } catch (const std::exception& e) {
        why += ": ";
        why += e.what();
    } catch (...) {
    }
    return std::make_exception_ptr(transport_error("inproc: " + why));
}

struct inproc_world {
    explicit inproc_world(int n) : mailboxes(static_cast<std::size_t>(n)) {}

    std::vector<inproc_mailbox> mailboxes;  // by world rank
    std::atomic<std::uint64_t> next_comm{1};

    std::mutex split_mutex;
    std::condition_variable split_cv;
    std::map<std::pair<std::uint64_t, std::uint64_t>, inproc_split> splits;  // (comm, sequence)

    std::mutex abort_mutex;
    std::exception_ptr abort_reason;  // set once a rank failed: every wait then fails fast
    std::atomic<bool> aborted{false};

    void abort(std::exception_ptr reason) {
        {
            std::lock_guard lock(abort_mutex);
            if (aborted.load()) return;
            abort_reason = std::move(reason);
            aborted.store(true);
        }
        const auto failure = inproc_aborted_error(abort_reason);
        for (auto& box : mailboxes) {
            std::lock_guard lock(box.mutex);
            for (auto& r : box.posted) r.op->complete(0, failure);
            box.posted.clear();
            for (auto& m : box.unexpected) {
                if (m.send_op) m.send_op->complete(0, failure);
            }
            std::erase_if(box.unexpected, [](const inproc_message& m) { return m.send_op != nullptr; });
        }
        {
            std::lock_guard lock(split_mutex);
        }
        split_cv.notify_all();
    }

    std::exception_ptr abort_error() {
        std::lock_guard lock(abort_mutex);
        return abort_reason;
    }
};

}  // namespace dtfm::detail

namespace dtfm::transport {

// The handle of an inproc send or receive. A send completes when its bytes are copied: at once
// for messages up to inproc::eager_limit, else when the receiver takes them. A receive completes
// when a matching message arrives. Destroying an unfinished request cancels it, so a caller that
// gave up after wait_for never has its buffer read or written later.
class inproc_request {
public:
    inproc_request() = default;
    inproc_request(inproc_request&& other) noexcept
        : op_(std::move(other.op_)), world_(std::move(other.world_)), box_(std::exchange(other.box_, nullptr)) {}
    inproc_request& operator=(inproc_request&& other) noexcept {
        if (this != &other) {
            cancel();
            op_ = std::move(other.op_);
            world_ = std::move(other.world_);
            box_ = std::exchange(other.box_, nullptr);
        }
        return *this;
    }
    inproc_request(const inproc_request&) = delete;
    inproc_request& operator=(const inproc_request&) = delete;
    ~inproc_request() { cancel(); }

    // Blocks until done; returns the bytes moved, or rethrows the failure.
    std::size_t wait() {
        std::unique_lock lock(op_->mutex);
        op_->done_cv.wait(lock, [&] { return op_->done; });
        return finish(lock);
    }

    bool test() {
        std::unique_lock lock(op_->mutex);
        if (!op_->done) return false;
        finish(lock);
        return true;
    }

    // False when `timeout` passed first; the request stays pending.
    bool wait_for(std::chrono::nanoseconds timeout) {
        std::unique_lock lock(op_->mutex);
        if (!op_->done_cv.wait_until(lock, dtfm::detail::deadline_after(timeout), [&] { return op_->done; })) return false;
        finish(lock);
        return true;
    }

private:
    friend class inproc;
    explicit inproc_request(std::shared_ptr<dtfm::detail::inproc_op> op) : op_(std::move(op)) {}
    inproc_request(std::shared_ptr<dtfm::detail::inproc_op> op, std::shared_ptr<dtfm::detail::inproc_world> world,
                   dtfm::detail::inproc_mailbox* box)
        : op_(std::move(op)), world_(std::move(world)), box_(box) {}

    std::size_t finish(std::unique_lock<std::mutex>&) {
        if (op_->failure) std::rethrow_exception(op_->failure);
        return op_->bytes;
    }

    void cancel() noexcept {
        if (!op_ || !box_) return;
        std::lock_guard lock(box_->mutex);
        box_->posted.remove_if([&](const dtfm::detail::inproc_posted_receive& r) { return r.op == op_; });
        std::erase_if(box_->unexpected, [&](const dtfm::detail::inproc_message& m) { return m.send_op == op_; });
        box_ = nullptr;
    }

    std::shared_ptr<dtfm::detail::inproc_op> op_;
    std::shared_ptr<dtfm::detail::inproc_world> world_;  // keeps box_ alive
    dtfm::detail::inproc_mailbox* box_ = nullptr;        // set while the request may still be queued there
};

// One rank's view of a group of threads. Create a world with run_inproc(); split() makes
// sub-groups. Objects are used by their own rank's thread only.
class inproc {
public:
    using transport_concept = transport_tag;
    using memory_space = host_space;
    using request_type = inproc_request;
    static constexpr bool drop_releases_buffer = true;  // a dropped request is cancelled under the mailbox lock

    int rank() const { return rank_; }
    int size() const { return static_cast<int>(members_->size()); }

    // Messages up to this size are copied at once; larger ones are copied once, by the receiver.
    static constexpr std::size_t eager_limit = 64 * 1024;

    // `bytes` must stay alive until the request completes (at once for small messages).
    inproc_request isend(int peer, message_tag tag, std::span<const std::byte> bytes) {
        check_peer(peer, "isend");
        check_tag(tag);
        auto op = std::make_shared<dtfm::detail::inproc_op>();
        auto& box = world_->mailboxes[static_cast<std::size_t>((*members_)[static_cast<std::size_t>(peer)])];
        std::lock_guard lock(box.mutex);
        if (world_->aborted.load()) {
            op->complete(0, dtfm::detail::inproc_aborted_error(world_->abort_error()));
            return inproc_request(std::move(op));
        }
        auto match = std::find_if(box.posted.begin(), box.posted.end(), [&](const auto& r) {
            return r.comm == comm_ && r.source == rank_ && r.tag == tag;
        });
        if (match != box.posted.end()) {
            deliver(bytes, *match);
            box.posted.erase(match);
            op->complete(bytes.size());
            return inproc_request(std::move(op));
        }
        if (bytes.size() <= eager_limit) {
            box.unexpected.push_back({comm_, rank_, tag, std::vector<std::byte>(bytes.begin(), bytes.end()), {}, {}});
            op->complete(bytes.size());
            return inproc_request(std::move(op));
        }
        box.unexpected.push_back({comm_, rank_, tag, {}, bytes, op});
        return inproc_request(std::move(op), world_, &box);
    }

    // `buffer` must stay alive until the request completes or is destroyed. A message larger
    // than the buffer fails the receive with a transport_error (the message is dropped, and its
    // send completes).
    inproc_request irecv(int peer, message_tag tag, std::span<std::byte> buffer) {
        check_peer(peer, "irecv");
        check_tag(tag);
        auto op = std::make_shared<dtfm::detail::inproc_op>();
        auto& box = world_->mailboxes[static_cast<std::size_t>(world_rank_)];
        std::lock_guard lock(box.mutex);
        if (world_->aborted.load()) {
            op->complete(0, dtfm::detail::inproc_aborted_error(world_->abort_error()));
            return inproc_request(std::move(op));
        }
        auto match = std::find_if(box.unexpected.begin(), box.unexpected.end(), [&](const auto& m) {
            return m.comm == comm_ && m.source == peer && m.tag == tag;
        });
        if (match != box.unexpected.end()) {
            dtfm::detail::inproc_posted_receive r{comm_, peer, tag, buffer, op};
            deliver(match->bytes(), r);
            if (match->send_op) match->send_op->complete(match->borrowed.size());
            box.unexpected.erase(match);
            return inproc_request(std::move(op));
        }
        box.posted.push_back({comm_, peer, tag, buffer, op});
        return inproc_request(std::move(op), world_, &box);
    }

    // Collective over this group: ranks of equal color (>= 0) form a sub-group, ranked by
    // (key, rank), as MPI_Comm_split.
    inproc split(int color, int key) {
        if (color < 0) throw transport_error("inproc::split: color must be >= 0, got " + std::to_string(color));
        const auto id = std::make_pair(comm_, split_sequence_++);
        const auto n = static_cast<std::size_t>(size());
        const auto me = static_cast<std::size_t>(rank_);
        std::unique_lock lock(world_->split_mutex);
        auto& s = world_->splits[id];
        if (s.colors.empty()) {
            s.colors.assign(n, 0);
            s.keys.assign(n, 0);
        }
        s.colors[me] = color;
        s.keys[me] = key;
        if (++s.arrived == size()) {
            form_groups(s);
            world_->split_cv.notify_all();
        } else {
            world_->split_cv.wait(lock, [&] { return s.formed || world_->aborted.load(); });
            if (!s.formed) std::rethrow_exception(dtfm::detail::inproc_aborted_error(world_->abort_error()));
        }
        inproc sub(world_, s.members_of[me], s.comm_of[me], s.rank_of[me]);
        if (++s.collected == size()) world_->splits.erase(id);
        return sub;
    }

private:
    template <class F>
    friend void run_inproc(int ranks, F&& body);

    inproc(std::shared_ptr<dtfm::detail::inproc_world> world, std::shared_ptr<const std::vector<int>> members,
           std::uint64_t comm, int rank)
        : world_(std::move(world)), members_(std::move(members)), comm_(comm), rank_(rank),
          world_rank_((*members_)[static_cast<std::size_t>(rank)]) {}

    void check_peer(int peer, const char* call) const {
        if (peer < 0 || peer >= size()) {
            throw transport_error(std::string("inproc::") + call + ": peer " + std::to_string(peer) +
                                  " is not in a group of " + std::to_string(size()));
        }
    }

    static void check_tag(message_tag tag) {
        if (tag.id > message_tag::max_id) {
            throw transport_error("inproc: message id " + std::to_string(tag.id) + " exceeds 2^24 - 1");
        }
    }

    // Called with the receiver's mailbox locked, so a cancelling receiver waits for the copy.
    static void deliver(std::span<const std::byte> bytes, const dtfm::detail::inproc_posted_receive& r) {
        if (bytes.size() > r.buffer.size()) {
            r.op->complete(0, std::make_exception_ptr(transport_error(
                                  "inproc: a message of " + std::to_string(bytes.size()) +
                                  " bytes does not fit a receive buffer of " + std::to_string(r.buffer.size()))));
            return;
        }
        if (!bytes.empty()) std::memcpy(r.buffer.data(), bytes.data(), bytes.size());
        r.op->complete(bytes.size());
    }

    void form_groups(dtfm::detail::inproc_split& s) const {
        const auto n = s.colors.size();
        s.comm_of.assign(n, 0);
        s.members_of.assign(n, nullptr);
        s.rank_of.assign(n, 0);
        std::map<int, std::vector<std::size_t>> by_color;
        for (std::size_t r = 0; r < n; ++r) by_color[s.colors[r]].push_back(r);
        for (auto& [color, ranks] : by_color) {
            std::stable_sort(ranks.begin(), ranks.end(), [&](std::size_t a, std::size_t b) {
                return s.keys[a] != s.keys[b] ? s.keys[a] < s.keys[b] : a < b;
            });
            auto members = std::make_shared<std::vector<int>>();
            for (auto r : ranks) members->push_back((*members_)[r]);
            const auto comm = world_->next_comm.fetch_add(1);
            for (std::size_t i = 0; i < ranks.size(); ++i) {
                s.comm_of[ranks[i]] = comm;
                s.members_of[ranks[i]] = members;
                s.rank_of[ranks[i]] = static_cast<int>(i);
            }
        }
        s.formed = true;
    }

    std::shared_ptr<dtfm::detail::inproc_world> world_;
    std::shared_ptr<const std::vector<int>> members_;  // world rank of each rank of this group
    std::uint64_t comm_ = 0;
    int rank_ = 0;
    int world_rank_ = 0;
    std::uint64_t split_sequence_ = 0;
};

// Runs body(inproc&) on `ranks` threads, one per rank, and returns when all have finished. The
// first exception thrown on any rank is rethrown here; the other ranks' pending and later
// operations then fail fast with a transport_error instead of waiting for the dead rank.
template <class F>
void run_inproc(int ranks, F&& body) {
    if (ranks < 1) throw transport_error("run_inproc: need at least one rank, got " + std::to_string(ranks));
    auto world = std::make_shared<dtfm::detail::inproc_world>(ranks);
    auto members = std::make_shared<std::vector<int>>(static_cast<std::size_t>(ranks));
    for (int r = 0; r < ranks; ++r) (*members)[static_cast<std::size_t>(r)] = r;

    std::mutex first_mutex;
    std::exception_ptr first;
    auto run_rank = [&](int r) {
        try {
            inproc self(world, members, 0, r);
            body(self);
        } catch (...) {
            {
                std::lock_guard lock(first_mutex);
                if (!first) first = std::current_exception();
            }
            world->abort(std::current_exception());
        }
    };
    {
        std::vector<std::jthread> threads;
        threads.reserve(static_cast<std::size_t>(ranks - 1));
        for (int r = 1; r < ranks; ++r) threads.emplace_back(run_rank, r);
        run_rank(0);
    }
    if (first) std::rethrow_exception(first);
}

static_assert(dtfm::concepts::transport<inproc>);

}  // namespace dtfm::transport
