// staged<T, Copier>: a transport for buffers in another memory space (device memory) over a host
// transport T that cannot read them (Debian's Open MPI is not CUDA-aware). A send copies the bytes
// into a staging block (pinned host memory) on the copier's own stream, waits on the host for that
// copy (with cuda::pinned_copier, which starts after the compute stream's queued work, for that
// work too), and sends the block; a receive lands in a block and is copied out when it completes.
// Blocks come from a pool that keeps them: after the first messages of each size nothing is allocated. The
// copier (dtfm/cuda/staging.cuh: cuda::pinned_copier) is a policy, so the request logic is tested
// on the host with a copier that defers its copies until they are waited for.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "dtfm/concepts/transport.hpp"
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

template <concepts::transport T, staging_copier C>
class staged;

template <concepts::transport T, staging_copier C>
class staged_request {
public:
    using fence = typename C::fence;

    staged_request(staged_request&& o) noexcept
        : pool_(std::move(o.pool_)), block_(std::exchange(o.block_, {nullptr, 0})), inner_(std::move(o.inner_)),
          target_(o.target_), receive_(o.receive_), inner_done_(o.inner_done_), size_(o.size_), copy_(std::move(o.copy_)) {}
    staged_request& operator=(staged_request&& o) noexcept {
        if (this != &o) {
            release();
            pool_ = std::move(o.pool_);
            block_ = std::exchange(o.block_, {nullptr, 0});
            inner_ = std::move(o.inner_);
            target_ = o.target_;
            receive_ = o.receive_;
            inner_done_ = o.inner_done_;
            size_ = o.size_;
            copy_ = std::move(o.copy_);
        }
        return *this;
    }
    staged_request(const staged_request&) = delete;
    staged_request& operator=(const staged_request&) = delete;
    ~staged_request() { release(); }

    // The bytes moved; for a receive, once they are in the destination buffer.
    std::size_t wait() {
        finish_inner(inner_->wait());
        if (copy_) copy_->wait();
        return size_;
    }

    bool test() {
        if (!inner_done_) {
            if (!inner_->test()) return false;
            finish_inner(inner_->wait());
        }
        return !copy_ || copy_->ready();
    }

    bool wait_for(std::chrono::nanoseconds d) {
        if (!inner_done_) {
            if (!inner_->wait_for(d)) return false;
            finish_inner(inner_->wait());
        }
        if (copy_) copy_->wait();  // a copy of at most the message: short next to any network
        return true;
    }

private:
    template <concepts::transport, staging_copier>
    friend class staged;

    staged_request(std::shared_ptr<detail::staging_pool<C>> pool, std::pair<std::byte*, std::size_t> block,
                   typename T::request_type inner, std::byte* target, bool receive)
        : pool_(std::move(pool)), block_(block), inner_(std::move(inner)), target_(target), receive_(receive) {}

    void finish_inner(std::size_t size) {
        if (inner_done_) return;
        inner_done_ = true;
        size_ = size;
        if (receive_ && size > 0) copy_.emplace(pool_->copier().to_space(target_, block_.first, size));
    }

    void release() noexcept {
        if (!pool_ || block_.first == nullptr) return;
        bool in_use = !inner_done_;
        if (!in_use && copy_) {
            try {
                copy_->wait();
            } catch (...) {
                in_use = true;
            }
        }
        inner_.reset();  // the host transport's own abandon rules apply to its request
        pool_->release(block_, in_use);
        block_ = {nullptr, 0};
    }

    std::shared_ptr<detail::staging_pool<C>> pool_;
    std::pair<std::byte*, std::size_t> block_;
    std::optional<typename T::request_type> inner_;
    std::byte* target_ = nullptr;
    bool receive_ = false;
    bool inner_done_ = false;
    std::size_t size_ = 0;
    std::optional<fence> copy_;
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
        : inner_(std::move(inner)), pool_(std::make_shared<detail::staging_pool<C>>(std::move(copier))) {}

    int rank() const { return inner_.rank(); }
    int size() const { return inner_.size(); }

    // Waits for the copy of `bytes` to staging memory (not for the send), so the caller may reuse
    // its buffer at once and sends keep their order.
    request_type isend(int peer, message_tag tag, std::span<const std::byte> bytes) {
        auto block = pool_->acquire(bytes.size());
        try {
            if (!bytes.empty()) pool_->copier().to_host(block.first, bytes.data(), bytes.size()).wait();
            auto inner = inner_.isend(peer, tag, std::span<const std::byte>(block.first, bytes.size()));
            return request_type(pool_, block, std::move(inner), nullptr, false);
        } catch (...) {
            pool_->release(block, false);
            throw;
        }
    }

    request_type irecv(int peer, message_tag tag, std::span<std::byte> buffer) {
        auto block = pool_->acquire(buffer.size());
        try {
            auto inner = inner_.irecv(peer, tag, std::span<std::byte>(block.first, buffer.size()));
            return request_type(pool_, block, std::move(inner), buffer.data(), true);
        } catch (...) {
            pool_->release(block, false);
            throw;
        }
    }

    // The sub-group shares this transport's staging blocks and copier.
    staged split(int color, int key) { return staged(inner_.split(color, key), pool_); }

    T& inner() noexcept { return inner_; }
    C& copier() noexcept { return pool_->copier(); }
    // Staging blocks held (free or abandoned), for tests and diagnostics.
    std::size_t staging_blocks() const { return pool_->blocks(); }

private:
    staged(T inner, std::shared_ptr<detail::staging_pool<C>> pool) : inner_(std::move(inner)), pool_(std::move(pool)) {}

    T inner_;
    std::shared_ptr<detail::staging_pool<C>> pool_;
};

}  // namespace dtfm::transport
