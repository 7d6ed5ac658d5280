// staged<T, Copier>: a transport for buffers in another memory space (device memory) over a host
// transport T that cannot read them (Debian's Open MPI is not CUDA-aware). A send starts a copy of
// the bytes into a staging block (pinned host memory) on the copier's own stream and returns at
// once; the block goes to the host transport when the copy is done (with cuda::pinned_copier the
// copy starts after the compute stream's queued work), so the host goes on queueing work while the
// device finishes what the send carries. A receive lands in a block and is copied out when it
// completes. Blocks come from a pool that keeps them: after the first messages of each size nothing
// is allocated. The copier (dtfm/cuda/staging.cuh: cuda::pinned_copier) is a policy, so the request
// logic is tested on the host with copiers that finish their copies only when asked.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dtfm/concepts/transport.hpp"
#include "dtfm/error.hpp"
#include "dtfm/spaces.hpp"

namespace dtfm::transport {

// Copier: moves bytes between its memory space and host staging memory, asynchronously. A fence
// says when one copy is done (ready() polls, wait() blocks).
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

namespace detail {

// One message through a staging block: the block, the host transport's request once posted, and
// the copy between the block and the caller's buffer. Shared by the request and, until it is
// posted, the link's queue of sends.
template <concepts::transport T, staging_copier C>
struct staged_op {
    staged_op(std::shared_ptr<staging_pool<C>> p, std::size_t n) : pool(std::move(p)), block(pool->acquire(n)) {}
    staged_op(const staged_op&) = delete;
    staged_op& operator=(const staged_op&) = delete;

    // The block is reused only when nothing can touch it any more: no copy into or out of it, and
    // no host request still reading or filling it.
    ~staged_op() {
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
    }

    // The host transport's own abandon rules apply to its request, in the caller's thread.
    void drop_inner() noexcept {
        if (inner && !inner_done) abandoned = true;
        inner.reset();
    }

    // A receive that completed on the host: copy the message out of the block.
    void finish_inner(std::size_t n) {
        if (inner_done) return;
        inner_done = true;
        size = n;
        if (receive && n > 0) copy.emplace(pool->copier().to_space(target, block.first, n));
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
    std::exception_ptr failure;      // the host transport refused the send
    std::atomic<bool> posted{false};  // inner (or, for a send, failure) is set
    bool inner_done = false;
    bool abandoned = false;  // the request went before the host transport was done with the block
};

// The host transport and the sends whose copies to staging memory may still run, in the order
// they were made. Each is posted to the host transport, in that order (messages with one key
// arrive in send order), once its copy is done: whenever the transport or one of its requests is
// used, and all of them before anything blocks (a rank that waits for a reply must first have
// sent what the reply answers). Every use of the host transport goes through its mutex.
template <concepts::transport T, staging_copier C>
class staged_link {
public:
    using op = staged_op<T, C>;

    explicit staged_link(T t) : transport_(std::move(t)) {}
    staged_link(const staged_link&) = delete;
    staged_link& operator=(const staged_link&) = delete;

    T& transport() noexcept { return transport_; }

    void enqueue(std::shared_ptr<op> o) {
        {
            std::lock_guard lock(mutex_);
            queue_.push_back(std::move(o));
        }
        post(false);
    }

    typename T::request_type irecv(int peer, message_tag tag, std::span<std::byte> block) {
        post(false);
        std::lock_guard lock(mutex_);
        return transport_.irecv(peer, tag, block);
    }

    // Posts the sends whose copies are done, from the front; with wait, all of them, waiting for
    // their copies (a copy waits only for work already queued on the device, never for a peer).
    void post(bool wait) {
        std::lock_guard lock(mutex_);
        while (!queue_.empty()) {
            op& o = *queue_.front();
            try {
                if (o.copy) {
                    if (wait)
                        o.copy->wait();
                    else if (!o.copy->ready())
                        break;
                }
                o.inner.emplace(transport_.isend(o.peer, o.tag, std::span<const std::byte>(o.block.first, o.size)));
            } catch (...) {
                o.failure = std::current_exception();  // this send's, rethrown by its request
            }
            o.posted.store(true, std::memory_order_release);
            queue_.pop_front();  // never the last owner: a dropped request posts its send first
        }
    }

    T split(int color, int key) {
        std::lock_guard lock(mutex_);
        return transport_.split(color, key);
    }

private:
    T transport_;
    std::mutex mutex_;
    std::deque<std::shared_ptr<op>> queue_;
};

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
        link_->post(true);
        auto& o = *op_;
        rethrow_failure();
        o.finish_inner(o.inner->wait());
        if (o.receive && o.copy) o.copy->wait();
        return o.size;
    }

    bool test() {
        link_->post(false);
        auto& o = *op_;
        if (!o.posted.load(std::memory_order_acquire)) return false;
        rethrow_failure();
        if (!o.inner_done) {
            if (!o.inner->test()) return false;
            o.finish_inner(o.inner->wait());
        }
        return !o.receive || !o.copy || o.copy->ready();
    }

    bool wait_for(std::chrono::nanoseconds d) {
        link_->post(true);
        auto& o = *op_;
        rethrow_failure();
        if (!o.inner_done) {
            if (!o.inner->wait_for(d)) return false;
            o.finish_inner(o.inner->wait());
        }
        if (o.receive && o.copy) o.copy->wait();  // a copy of at most the message: short next to any network
        return true;
    }

private:
    template <concepts::transport, staging_copier>
    friend class staged;
    using link = detail::staged_link<T, C>;
    using op = detail::staged_op<T, C>;

    staged_request(std::shared_ptr<link> l, std::shared_ptr<op> o) : link_(std::move(l)), op_(std::move(o)) {}

    void rethrow_failure() const {
        if (op_->failure) std::rethrow_exception(op_->failure);
    }

    // A dropped send still goes out now, and the host request is dropped here, as the host
    // transport's own would have been.
    void drop() noexcept {
        if (!op_) return;
        if (!op_->receive && !op_->posted.load(std::memory_order_acquire)) {
            try {
                link_->post(true);
            } catch (...) {
            }
        }
        if (op_->posted.load(std::memory_order_acquire)) op_->drop_inner();
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
          pool_(std::make_shared<detail::staging_pool<C>>(std::move(copier))) {}

    int rank() const { return link_->transport().rank(); }
    int size() const { return link_->transport().size(); }

    // Starts the copy of `bytes` to staging memory and returns; the host transport sends the block
    // once the copy is done. `bytes` must stay unchanged until the request completes, or, with
    // cuda::pinned_copier, until work queued later on the compute stream (which waits for the copy).
    request_type isend(int peer, message_tag tag, std::span<const std::byte> bytes) {
        // Refused here, not when the block is posted later.
        if (peer < 0 || peer >= size())
            throw transport_error("staged::isend: peer " + std::to_string(peer) + " is not in a group of " + std::to_string(size()));
        if (tag.id > message_tag::max_id)
            throw transport_error("staged::isend: message id " + std::to_string(tag.id) + " exceeds 2^24 - 1");
        auto o = std::make_shared<op>(pool_, bytes.size());
        o->peer = peer;
        o->tag = tag;
        o->size = bytes.size();
        if (!bytes.empty()) o->copy.emplace(pool_->copier().to_host(o->block.first, bytes.data(), bytes.size()));
        link_->enqueue(o);
        return request_type(link_, std::move(o));
    }

    request_type irecv(int peer, message_tag tag, std::span<std::byte> buffer) {
        auto o = std::make_shared<op>(pool_, buffer.size());
        o->receive = true;
        o->target = buffer.data();
        o->inner.emplace(link_->irecv(peer, tag, std::span<std::byte>(o->block.first, buffer.size())));
        o->posted.store(true, std::memory_order_relaxed);
        return request_type(link_, std::move(o));
    }

    // The sub-group shares this transport's staging blocks and copier.
    staged split(int color, int key) { return staged(link_->split(color, key), pool_); }

    T& inner() noexcept { return link_->transport(); }
    C& copier() noexcept { return pool_->copier(); }
    // Staging blocks held (free or abandoned), for tests and diagnostics.
    std::size_t staging_blocks() const { return pool_->blocks(); }

private:
    using link = detail::staged_link<T, C>;
    using op = detail::staged_op<T, C>;

    staged(T inner, std::shared_ptr<detail::staging_pool<C>> pool)
        : link_(std::make_shared<link>(std::move(inner))), pool_(std::move(pool)) {}

    std::shared_ptr<link> link_;
    std::shared_ptr<detail::staging_pool<C>> pool_;
};

}  // namespace dtfm::transport
