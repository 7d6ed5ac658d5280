// staged<T, Copier>: a transport for buffers in another memory space (device memory) over a host
// transport T that cannot read them (Debian's Open MPI is not CUDA-aware). A send starts a copy of
// the bytes into a staging block (pinned host memory) on the copier's own stream and returns at
// once; a thread shared by the transport and its splits hands the block to the host transport when
// the copy has landed, in the order the sends were made (with cuda::pinned_copier the copy starts
// after the compute stream's queued work), so the host goes on queueing work while the device
// finishes what the send carries, and a send goes out whatever its rank blocks on meanwhile. That
// thread calls the host transport: over MPI, MPI_THREAD_MULTIPLE. A receive lands in a block and
// is copied out when it completes. Blocks come from a pool that keeps them: after the first
// messages of each size nothing is allocated. The copier (dtfm/cuda/staging.cuh:
// cuda::pinned_copier) is a policy, so the request logic is tested on the host with copiers whose
// copies land late.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dtfm/concepts/transport.hpp"
#include "dtfm/detail/background_worker.hpp"
#include "dtfm/detail/deadline.hpp"
#include "dtfm/error.hpp"
#include "dtfm/spaces.hpp"

namespace dtfm::transport {

// Copier: moves bytes between its memory space and host staging memory, asynchronously. A fence
// says when one copy is done (ready() polls, wait() blocks). A copier may also have
// bind_thread() noexcept, which the poster thread calls before it waits on a copy (a GPU copier
// makes its device current there: on a multi-GPU node that is not device 0).
template <class C>
concept staging_copier = concepts::memory_space<typename C::memory_space> && std::movable<typename C::fence> &&
                         requires(C& c, typename C::fence& f, std::byte* host, const std::byte* from,
                                  std::byte* to, std::size_t n) {
                             { c.allocate(n) } -> std::same_as<std::byte*>;
                             c.deallocate(host, n);
                             { c.to_host(host, from, n) } -> std::same_as<typename C::fence>;
                             { c.to_space(to, static_cast<const std::byte*>(host), n) } -> std::same_as<typename C::fence>;
                             { f.ready() } -> std::same_as<bool>;
                             f.wait();
                         };

namespace detail {

// Staging blocks by size, reused; shared by a transport, its splits and their requests.
template <class C>
class staging_pool {
public:
    explicit staging_pool(C copier) : copier_(std::move(copier)) {}
    staging_pool(const staging_pool&) = delete;
    staging_pool& operator=(const staging_pool&) = delete;
    ~staging_pool() {
        for (auto& b : free_) copier_.deallocate(b.first, b.second);
        for (auto& b : abandoned_) copier_.deallocate(b.first, b.second);
    }

    C& copier() { return copier_; }

    // A block of at least n bytes (the smallest free one that fits, else a new one).
    std::pair<std::byte*, std::size_t> acquire(std::size_t n) {
        {
            std::lock_guard lock(mutex_);
            std::size_t best = free_.size();
            for (std::size_t i = 0; i < free_.size(); ++i) {
                if (free_[i].second >= n && (best == free_.size() || free_[i].second < free_[best].second)) best = i;
            }
            if (best != free_.size()) {
                auto b = free_[best];
                free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(best));
                return b;
            }
        }
        const std::size_t size = n == 0 ? 1 : n;
        return {copier_.allocate(size), size};
    }

    // in_use: a request was dropped while the host transport may still touch the block; it is
    // never handed out again (freed with the pool).
    void release(std::pair<std::byte*, std::size_t> b, bool in_use) {
        std::lock_guard lock(mutex_);
        (in_use ? abandoned_ : free_).push_back(b);
    }

    std::size_t blocks() {
        std::lock_guard lock(mutex_);
        return free_.size() + abandoned_.size();
    }

private:
    C copier_;
    std::mutex mutex_;
    std::vector<std::pair<std::byte*, std::size_t>> free_;
    std::vector<std::pair<std::byte*, std::size_t>> abandoned_;
};

}  // namespace detail

template <concepts::transport T, staging_copier C>
class staged;

namespace detail {

// One message through a staging block: the block, the host transport's request once posted, and
// the copy between the block and the caller's buffer. Shared by the request and, until it is
// posted, the poster's task for it.
template <concepts::transport T, staging_copier C>
struct staged_op {
    staged_op(std::shared_ptr<staging_pool<C>> p, std::size_t n) : pool(std::move(p)), block(pool->acquire(n)) {}
    staged_op(const staged_op&) = delete;
    staged_op& operator=(const staged_op&) = delete;

    ~staged_op() { release_block(); }

    // The block is reused only when nothing can touch it any more: no copy into or out of it, and
    // no host request still reading or filling it. Once.
    void release_block() noexcept {
        if (block.first == nullptr) return;
        drop_inner();
        bool in_use = abandoned;
        if (copy && !in_use) {
            try {
                copy->wait();
            } catch (...) {
                in_use = true;
            }
        }
        pool->release(block, in_use);
        block = {nullptr, 0};
    }

    // A receive that completed on the host: copy the message out of the block.
    // Done only once the copy is queued: if queueing it fails, the next wait tries again.
    void finish_inner(std::size_t n) {
        if (inner_done) return;
        if (receive && n > 0) copy.emplace(pool->copier().to_space(target, block.first, n));
        size = n;
        inner_done = true;
    }

    // The host transport's own abandon rules apply to its request, in the caller's thread; a
    // request it has finished with leaves the block free, and so does any dropped request of a
    // transport whose dropped requests never touch their buffers again (drop_releases_buffer).
    void drop_inner() noexcept {
        if (inner && !inner_done) {
            try {
                inner_done = inner->test();
            } catch (...) {
            }
            abandoned = !inner_done;
        }
        inner.reset();
        if constexpr (concepts::drop_releases_buffer<T>) abandoned = false;
    }

    std::shared_ptr<staging_pool<C>> pool;
    std::pair<std::byte*, std::size_t> block;
    int peer = 0;
    message_tag tag{};
    std::size_t size = 0;            // a send's bytes; a receive's, once complete
    std::byte* target = nullptr;     // a receive's destination
    bool receive = false;
    std::optional<typename C::fence> copy;  // send: into the block; receive: out of it
    std::optional<typename T::request_type> inner;
    std::exception_ptr failure;        // the send could not be posted
    dtfm::detail::task_handle posting;  // a send's turn on the poster thread (done: inner or failure set)
    bool posted = false;               // the same, for drop() (the link's mutex); receives: at once
    bool cancelled = false;            // dropped before it was posted: never sent (the link's mutex)
    bool inner_done = false;
    bool abandoned = false;           // the request went before the host transport was done with the block
};

// The host transport of one group, shared by its staged transport and their requests; sends,
// receives and splits go through the mutex. After a send fails, the later ones on the group fail too (so
// none can take the failed one's place in the order of its key).
template <concepts::transport T>
struct staged_link {
    explicit staged_link(T t) : transport(std::move(t)) {}

    T transport;
    std::mutex mutex;
    std::exception_ptr failure;          // the first send the host transport refused
    dtfm::detail::task_handle last_posting;  // the latest send queued on this group (the mutex)
};

// Run on the poster: a background_worker shared by a transport and its splits (one copy stream),
// which runs these in the order the sends were made. It waits for the send's copy, so a send goes
// out while its rank blocks on anything else (another group, a barrier, a collective), then posts
// the block, unless the request was dropped first or an earlier send of the group failed.
template <concepts::transport T, staging_copier C>
void post_staged(staged_link<T>& l, staged_op<T, C>& o) noexcept {
    if constexpr (requires(C& c) { c.bind_thread(); }) o.pool->copier().bind_thread();
    std::exception_ptr copy_failed;
    if (o.copy) {
        try {
            o.copy->wait();
        } catch (...) {
            copy_failed = std::current_exception();
        }
    }
    std::lock_guard lock(l.mutex);
    if (!o.cancelled) {
        if (copy_failed) {
            o.failure = l.failure = copy_failed;
        } else if (l.failure) {
            o.failure = l.failure;
        } else {
            try {
                o.inner.emplace(l.transport.isend(o.peer, o.tag, std::span<const std::byte>(o.block.first, o.size)));
            } catch (...) {
                o.failure = l.failure = std::current_exception();
            }
        }
    }
    o.posted = true;
}

}  // namespace detail

template <concepts::transport T, staging_copier C>
class staged_request {
public:
    staged_request(staged_request&&) noexcept = default;
    staged_request& operator=(staged_request&& o) noexcept {
        if (this != &o) {
            drop();
            link_ = std::move(o.link_);
            op_ = std::move(o.op_);
        }
        return *this;
    }
    staged_request(const staged_request&) = delete;
    staged_request& operator=(const staged_request&) = delete;
    ~staged_request() { drop(); }

    // The bytes moved; for a receive, once they are in the destination buffer.
    std::size_t wait() {
        auto& o = *op_;
        o.posting.wait();
        rethrow_failure();
        o.finish_inner(o.inner->wait());
        if (o.receive && o.copy) o.copy->wait();
        return o.size;
    }

    bool test() {
        auto& o = *op_;
        if (!o.posting.test()) return false;
        rethrow_failure();
        if (!o.inner_done) {
            if (!o.inner->test()) return false;
            o.finish_inner(o.inner->wait());
        }
        return !o.receive || !o.copy || o.copy->ready();
    }

    bool wait_for(std::chrono::nanoseconds d) {
        auto& o = *op_;
        const auto deadline = dtfm::detail::deadline_after(d);
        if (!o.posting.wait_for(d)) return false;
        rethrow_failure();
        if (!o.inner_done) {
            const auto left = std::max<std::chrono::nanoseconds>(deadline - std::chrono::steady_clock::now(), {});
            if (!o.inner->wait_for(left)) return false;
            o.finish_inner(o.inner->wait());
        }
        if (o.receive && o.copy) o.copy->wait();  // a copy of at most the message: short next to any network
        return true;
    }

private:
    template <concepts::transport, staging_copier>
    friend class staged;
    using link = detail::staged_link<T>;
    using op = detail::staged_op<T, C>;

    staged_request(std::shared_ptr<link> l, std::shared_ptr<op> o) : link_(std::move(l)), op_(std::move(o)) {}

    void rethrow_failure() const {
        if (op_->failure) std::rethrow_exception(op_->failure);
    }

    // A send dropped before it was posted is cancelled (never sent, as inproc and throttled do with
    // theirs); after, the host transport's own abandon rules apply to its request.
    void drop() noexcept {
        if (!op_) return;
        bool posted = true;
        if (!op_->receive) {
            try {
                std::lock_guard lock(link_->mutex);
                posted = op_->posted;
                if (!posted) op_->cancelled = true;
            } catch (...) {
            }
        }
        // Released here, not by whichever thread drops the op last, so the next message of this
        // size reuses the block.
        if (posted) op_->release_block();
        op_.reset();
        link_.reset();
    }

    std::shared_ptr<link> link_;
    std::shared_ptr<op> op_;
};

template <concepts::transport T, staging_copier C>
class staged {
    static_assert(std::same_as<typename T::memory_space, host_space>, "staged<T, C>: T must move host memory");

public:
    using transport_concept = transport_tag;
    using memory_space = typename C::memory_space;
    using request_type = staged_request<T, C>;
    using inner_type = T;

    explicit staged(T inner, C copier = C{})
        : link_(std::make_shared<link>(std::move(inner))),
          pool_(std::make_shared<detail::staging_pool<C>>(std::move(copier))),
          poster_(std::make_shared<dtfm::detail::background_worker>()) {}

    int rank() const { return link_->transport.rank(); }
    int size() const { return link_->transport.size(); }

    // Starts the copy of `bytes` to staging memory and returns; the poster thread hands the block
    // to the host transport once the copy has landed. `bytes` must stay unchanged until the
    // request completes; with cuda::pinned_copier, work queued later on the compute stream may
    // change it at once (that stream waits for the copy).
    request_type isend(int peer, message_tag tag, std::span<const std::byte> bytes) {
        // Refused here, not when the block is posted later.
        if (peer < 0 || peer >= size())
            throw transport_error("staged::isend: peer " + std::to_string(peer) + " is not in a group of " + std::to_string(size()));
        if (tag.id > message_tag::max_id)
            throw transport_error("staged::isend: message id " + std::to_string(tag.id) + " exceeds 2^24 - 1");
        {
            std::lock_guard lock(link_->mutex);
            if (link_->failure) std::rethrow_exception(link_->failure);
        }
        auto o = std::make_shared<op>(pool_, bytes.size());
        o->peer = peer;
        o->tag = tag;
        o->size = bytes.size();
        if (!bytes.empty()) o->copy.emplace(pool_->copier().to_host(o->block.first, bytes.data(), bytes.size()));
        {
            // Queued and remembered together, so last_posting is the group's latest send.
            std::lock_guard lock(link_->mutex);
            o->posting = poster_->submit([l = link_, p = o]() mutable {
                detail::post_staged(*l, *p);
                p.reset();  // here, not under the worker's lock: it may be the op's last owner
                l.reset();
            });
            link_->last_posting = o->posting;
        }
        return request_type(link_, std::move(o));
    }

    request_type irecv(int peer, message_tag tag, std::span<std::byte> buffer) {
        auto o = std::make_shared<op>(pool_, buffer.size());
        o->receive = true;
        o->target = buffer.data();
        {
            std::lock_guard lock(link_->mutex);
            o->inner.emplace(link_->transport.irecv(peer, tag, std::span<std::byte>(o->block.first, buffer.size())));
        }
        o->posted = true;
        return request_type(link_, std::move(o));
    }

    // Collective. The sub-group shares this transport's staging blocks, copier and poster. The
    // sends queued here are posted first (a peer may be waiting for them before it splits); sends
    // from other threads wait until the split is done.
    staged split(int color, int key) {
        dtfm::detail::task_handle queued;
        {
            std::lock_guard lock(link_->mutex);
            queued = link_->last_posting;
        }
        queued.wait();  // the group's sends so far are posted: their copies wait for device work only
        std::lock_guard lock(link_->mutex);
        return staged(link_->transport.split(color, key), pool_, poster_);
    }

    // The host transport, for setup: messages sent on it directly bypass the order of the sends
    // queued here.
    T& inner() noexcept { return link_->transport; }
    C& copier() noexcept { return pool_->copier(); }
    // Staging blocks held (free or abandoned), for tests and diagnostics.
    std::size_t staging_blocks() const { return pool_->blocks(); }

private:
    using link = detail::staged_link<T>;
    using op = detail::staged_op<T, C>;
    using poster = dtfm::detail::background_worker;

    staged(T inner, std::shared_ptr<detail::staging_pool<C>> pool, std::shared_ptr<poster> p)
        : link_(std::make_shared<link>(std::move(inner))), pool_(std::move(pool)), poster_(std::move(p)) {}

    std::shared_ptr<link> link_;
    std::shared_ptr<detail::staging_pool<C>> pool_;
    std::shared_ptr<poster> poster_;
};

}  // namespace dtfm::transport
