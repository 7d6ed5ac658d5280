// Copiers for transport::staged on the host: "device" memory is host memory, and a copy happens
// only when its fence is polled or waited for, as a GPU copy on its own stream lands later.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "dtfm/spaces.hpp"

namespace dtfm::test {

struct test_device_space {
    using memory_space_concept = memory_space_tag;
    static constexpr const char* name() noexcept { return "test device"; }
};

// One copy that happens when it "lands", once.
class pending_copy {
public:
    pending_copy(std::byte* to, const std::byte* from, std::size_t n) : to_(to), from_(from), n_(n) {}
    void land() {
        if (!done_) std::memcpy(to_, from_, n_);
        done_ = true;
    }

private:
    std::byte* to_;
    const std::byte* from_;
    std::size_t n_;
    bool done_ = false;
};

// Host memory standing for device memory.
struct host_blocks {
    std::byte* allocate(std::size_t n) { return new std::byte[n]; }
    void deallocate(std::byte* p, std::size_t) { delete[] p; }
};

struct deferred_copier {
    using memory_space = test_device_space;

    class fence {
    public:
        fence(std::byte* to, const std::byte* from, std::size_t n) : copy_(to, from, n) {}
        // Not ready the first time it is asked: the copy is "in flight".
        bool ready() {
            if (!asked_) {
                asked_ = true;
                return false;
            }
            wait();
            return true;
        }
        void wait() { copy_.land(); }

    private:
        pending_copy copy_;
        bool asked_ = false;
    };

    std::shared_ptr<int> allocations = std::make_shared<int>(0);
    // The threads that called bind_thread (the transport's poster), for the test that checks it.
    std::shared_ptr<std::vector<std::thread::id>> bound = std::make_shared<std::vector<std::thread::id>>();
    std::shared_ptr<std::mutex> bound_mutex = std::make_shared<std::mutex>();

    std::byte* allocate(std::size_t n) {
        ++*allocations;
        return host_blocks{}.allocate(n);
    }
    void deallocate(std::byte* p, std::size_t n) { host_blocks{}.deallocate(p, n); }
    fence to_host(std::byte* host, const std::byte* from, std::size_t n) { return {host, from, n}; }
    fence to_space(std::byte* to, const std::byte* host, std::size_t n) { return {to, host, n}; }
    void bind_thread() noexcept {
        std::lock_guard lock(*bound_mutex);
        bound->push_back(std::this_thread::get_id());
    }
};

// Copies that are "in flight" until the test opens the gate (a kernel still producing the data):
// ready() is false while it is shut, and wait() blocks until it opens, as on a device.
struct gated_copier : host_blocks {
    using memory_space = test_device_space;

    class fence {
    public:
        fence(std::shared_ptr<std::atomic<bool>> open, std::byte* to, const std::byte* from, std::size_t n)
            : open_(std::move(open)), copy_(to, from, n) {}
        bool ready() {
            if (!open_->load()) return false;
            wait();
            return true;
        }
        void wait() {
            while (!open_->load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
            copy_.land();
        }

    private:
        std::shared_ptr<std::atomic<bool>> open_;
        pending_copy copy_;
    };

    std::shared_ptr<std::atomic<bool>> open = std::make_shared<std::atomic<bool>>(false);

    fence to_host(std::byte* host, const std::byte* from, std::size_t n) { return {open, host, from, n}; }
    fence to_space(std::byte* to, const std::byte* host, std::size_t n) { return {open, to, host, n}; }
};

}  // namespace dtfm::test
