// activation_cache: AC-SGD's per-sample reference activations m(ξ) (Wang, Yuan et al., NeurIPS
// 2022) in fixed-size slots under a byte budget, least recently used evicted first, and two
// backing stores for the slots: memory_store (the heap) and mmap_store (a file-backed memory map).
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#if __has_include(<sys/mman.h>)
#include <cerrno>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#define DTFM_HAS_MMAP_STORE 1
#else
#define DTFM_HAS_MMAP_STORE 0
#endif

#include "dtfm/error.hpp"

namespace dtfm {

struct activation_store_tag {};

}  // namespace dtfm

namespace dtfm::concepts {

// Where an activation_cache keeps its slots: `allocate(slots, floats)` sizes one buffer of
// `slots` slots of `floats` values each (contents unspecified, earlier contents dropped), and
// `slot(i)` is the i-th, valid until the next allocate.
template <class S>
concept activation_store = std::same_as<typename S::activation_store_concept, activation_store_tag> &&
                           std::movable<S> && requires(S& s, const S& cs, std::size_t i) {
                               { s.allocate(i, i) } -> std::same_as<void>;
                               { s.slot(i) } -> std::same_as<std::span<float>>;
                               { cs.slot(i) } -> std::same_as<std::span<const float>>;
                           };

}  // namespace dtfm::concepts

namespace dtfm::compress {

// Slots on the heap. The buffer is not zeroed, so (for a large buffer, on Linux) pages are
// committed only as slots are first written: a large budget costs address space until it fills.
class memory_store {
public:
    using activation_store_concept = activation_store_tag;

    void allocate(std::size_t slots, std::size_t floats) {
        data_.reset();
        data_ = std::make_unique_for_overwrite<float[]>(slots * floats);
        floats_ = floats;
    }

    std::span<float> slot(std::size_t i) noexcept { return {data_.get() + i * floats_, floats_}; }
    std::span<const float> slot(std::size_t i) const noexcept { return {data_.get() + i * floats_, floats_}; }

private:
    std::unique_ptr<float[]> data_;
    std::size_t floats_ = 0;
};

static_assert(concepts::activation_store<memory_store>);

#if DTFM_HAS_MMAP_STORE

// Slots in a file mapped into memory (MAP_SHARED), so the page cache, not the heap, holds the
// activations that do not fit in RAM (AC-SGD keeps ~6.5 MB per sample for GPT2-XL). The file is
// created, with a unique name, in the directory given; disk space for the whole buffer is reserved
// by allocate, so a full disk is a dtfm::error there instead of a SIGBUS on a later write.
// The file is deleted when the store is destroyed unless `on_close::keep_file` is asked for (to
// inspect it); its contents mean nothing without the cache's index, which lives in memory.
class mmap_store {
public:
    using activation_store_concept = activation_store_tag;
    enum class on_close { remove_file, keep_file };

    explicit mmap_store(const std::filesystem::path& directory, on_close when_closed = on_close::remove_file)
        : when_closed_(when_closed) {
        std::string name = (directory / "dtfm-activations-XXXXXX").string();
        fd_ = ::mkstemp(name.data());
        if (fd_ < 0) fail("cannot create a file in " + directory.string());
        path_ = name;
    }

    mmap_store(mmap_store&& other) noexcept
        : path_(std::move(other.path_)), when_closed_(other.when_closed_),
          fd_(std::exchange(other.fd_, -1)), map_(std::exchange(other.map_, nullptr)),
          bytes_(std::exchange(other.bytes_, 0)), floats_(other.floats_) {
        other.path_.clear();
    }

    mmap_store& operator=(mmap_store&& other) noexcept {
        if (this != &other) {
            close();
            path_ = std::move(other.path_);
            other.path_.clear();
            when_closed_ = other.when_closed_;
            fd_ = std::exchange(other.fd_, -1);
            map_ = std::exchange(other.map_, nullptr);
            bytes_ = std::exchange(other.bytes_, 0);
            floats_ = other.floats_;
        }
        return *this;
    }

    mmap_store(const mmap_store&) = delete;
    mmap_store& operator=(const mmap_store&) = delete;
    ~mmap_store() { close(); }

    void allocate(std::size_t slots, std::size_t floats) {
        if (fd_ < 0) throw error("mmap_store::allocate: the store was moved from");
        unmap();
        const std::size_t bytes = slots * floats * sizeof(float);
        if (bytes > static_cast<std::size_t>(std::numeric_limits<off_t>::max())) {
            throw error("mmap_store::allocate: " + std::to_string(bytes) + " bytes do not fit in a file offset");
        }
        if (::ftruncate(fd_, 0) != 0) fail("cannot truncate " + path_.string());
        if (bytes == 0) return;
        // posix_fallocate returns the error number instead of setting errno.
        if (const int rc = ::posix_fallocate(fd_, 0, static_cast<off_t>(bytes)); rc != 0) {
            errno = rc;
            fail("cannot reserve " + std::to_string(bytes) + " bytes for " + path_.string());
        }
        void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
        if (p == MAP_FAILED) fail("cannot map " + std::to_string(bytes) + " bytes of " + path_.string());
        map_ = static_cast<float*>(p);
        bytes_ = bytes;
        floats_ = floats;
    }

    std::span<float> slot(std::size_t i) noexcept { return {map_ + i * floats_, floats_}; }
    std::span<const float> slot(std::size_t i) const noexcept { return {map_ + i * floats_, floats_}; }

    // The backing file (empty once moved from).
    const std::filesystem::path& path() const noexcept { return path_; }

private:
    [[noreturn]] static void fail(const std::string& what) {
        const int e = errno;
        throw error("mmap_store: " + what + ": " + std::strerror(e));
    }

    void unmap() noexcept {
        if (map_ != nullptr) ::munmap(map_, bytes_);
        map_ = nullptr;
        bytes_ = 0;
    }

    void close() noexcept {
        unmap();
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
        if (!path_.empty() && when_closed_ == on_close::remove_file) ::unlink(path_.c_str());
        path_.clear();
    }

    std::filesystem::path path_;
    on_close when_closed_ = on_close::remove_file;
    int fd_ = -1;
    float* map_ = nullptr;
    std::size_t bytes_ = 0;
    std::size_t floats_ = 0;
};

static_assert(concepts::activation_store<mmap_store>);

#endif  // DTFM_HAS_MMAP_STORE

// Up to budget / (4n) activations of n floats, keyed by a 64-bit sample id, in the slots of a
// Store. When every slot is taken, insert evicts the least recently used id (inserted or found by
// `use`; `peek` does not count as a use). The rule is deterministic: two caches with the same
// budget and n that see the same sequence of insert and use calls hold the same ids, which is how
// an AC-SGD sender knows what its receiver evicted without being told.
// The index (an open-addressing hash table and the recency list) is sized once, by `shape`, so
// nothing allocates after that; it costs about 32 bytes per slot on top of the budget.
template <concepts::activation_store Store = memory_store>
class activation_cache {
public:
    explicit activation_cache(std::size_t budget_bytes, Store store = Store{})
        : budget_(budget_bytes), store_(std::move(store)) {}

    // Fixes the activation size n (> 0) and allocates the slots and the index. Throws
    // dtfm::config_error if the budget cannot hold one activation.
    void shape(std::size_t n) {
        if (n == 0) throw config_error("activation_cache: activations must hold at least one value");
        const std::size_t max_slots = std::numeric_limits<std::uint32_t>::max() / 4;
        const std::size_t slots = std::min(budget_ / (n * sizeof(float)), max_slots);
        if (slots == 0) {
            throw config_error("activation_cache: a budget of " + std::to_string(budget_) +
                               " bytes cannot hold one activation of " + std::to_string(n) + " floats (" +
                               std::to_string(n * sizeof(float)) + " bytes)");
        }
        store_.allocate(slots, n);
        n_ = n;
        capacity_ = static_cast<std::uint32_t>(slots);
        std::size_t table = 2;
        while (table < 2 * slots) table *= 2;
        table_.assign(table, empty);
        ids_.assign(slots, 0);
        prev_.assign(slots, none);
        next_.assign(slots, none);
        clear();
    }

    bool shaped() const noexcept { return n_ != 0; }
    std::size_t activation_size() const noexcept { return n_; }  // n, 0 before shape
    std::size_t capacity() const noexcept { return capacity_; }   // slots
    std::size_t size() const noexcept { return used_; }           // ids held
    std::uint64_t evictions() const noexcept { return evictions_; }

    bool contains(std::uint64_t id) const noexcept { return find(id) != none; }

    // m(id) without marking a use; empty if id is not held.
    std::span<const float> peek(std::uint64_t id) const noexcept {
        const std::uint32_t s = find(id);
        return s == none ? std::span<const float>{} : store_.slot(s);
    }

    // m(id), now the most recently used; empty if id is not held.
    std::span<float> use(std::uint64_t id) noexcept {
        const std::uint32_t s = find(id);
        if (s == none) return {};
        unlink(s);
        push_front(s);
        return store_.slot(s);
    }

    // A slot for id, which must not be held (the caller checked): a free one, or the least
    // recently used one's, evicting it. Its contents are for the caller to write.
    std::span<float> insert(std::uint64_t id) {
        if (!shaped()) throw error("activation_cache::insert before shape");
        std::uint32_t s;
        if (used_ < capacity_) {
            s = used_++;
        } else {
            s = tail_;
            unlink(s);
            erase_index(ids_[s]);
            ++evictions_;
        }
        ids_[s] = id;
        put_index(id, s);
        push_front(s);
        return store_.slot(s);
    }

    // Forgets every id (n and the slots stay).
    void clear() noexcept {
        std::fill(table_.begin(), table_.end(), empty);
        used_ = 0;
        head_ = tail_ = none;
    }

    Store& store() noexcept { return store_; }
    const Store& store() const noexcept { return store_; }

private:
    static constexpr std::uint32_t none = std::numeric_limits<std::uint32_t>::max();
    static constexpr std::uint32_t empty = 0;  // table entries hold slot + 1

    static std::uint64_t mix(std::uint64_t x) noexcept {  // splitmix64's finaliser
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
        return x ^ (x >> 31);
    }
    std::size_t home(std::uint64_t id) const noexcept { return static_cast<std::size_t>(mix(id)) & (table_.size() - 1); }

    std::uint32_t find(std::uint64_t id) const noexcept {
        if (table_.empty()) return none;
        const std::size_t mask = table_.size() - 1;
        for (std::size_t i = home(id);; i = (i + 1) & mask) {
            const std::uint32_t e = table_[i];
            if (e == empty) return none;
            if (ids_[e - 1] == id) return e - 1;
        }
    }

    void put_index(std::uint64_t id, std::uint32_t s) noexcept {
        const std::size_t mask = table_.size() - 1;
        std::size_t i = home(id);
        while (table_[i] != empty) i = (i + 1) & mask;
        table_[i] = s + 1;
    }

    // Linear probing's deletion by backward shift: no tombstones, so probes stay short forever.
    void erase_index(std::uint64_t id) noexcept {
        const std::size_t mask = table_.size() - 1;
        std::size_t i = home(id);
        while (ids_[table_[i] - 1] != id) i = (i + 1) & mask;
        for (std::size_t j = (i + 1) & mask; table_[j] != empty; j = (j + 1) & mask) {
            const std::size_t k = home(ids_[table_[j] - 1]);
            // The entry at j may fill the hole at i unless its home lies cyclically in (i, j].
            const bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
            if (!stays) {
                table_[i] = table_[j];
                i = j;
            }
        }
        table_[i] = empty;
    }

    void unlink(std::uint32_t s) noexcept {
        (prev_[s] != none ? next_[prev_[s]] : head_) = next_[s];
        (next_[s] != none ? prev_[next_[s]] : tail_) = prev_[s];
        prev_[s] = next_[s] = none;
    }

    void push_front(std::uint32_t s) noexcept {
        prev_[s] = none;
        next_[s] = head_;
        if (head_ != none) prev_[head_] = s;
        head_ = s;
        if (tail_ == none) tail_ = s;
    }

    std::size_t budget_;
    Store store_;
    std::size_t n_ = 0;
    std::uint32_t capacity_ = 0;
    std::uint32_t used_ = 0;
    std::uint64_t evictions_ = 0;
    std::vector<std::uint32_t> table_;  // open addressing, power-of-two size ≥ 2 × capacity
    std::vector<std::uint64_t> ids_;    // per slot
    std::vector<std::uint32_t> prev_;   // per slot: recency list, head = most recently used
    std::vector<std::uint32_t> next_;
    std::uint32_t head_ = none;
    std::uint32_t tail_ = none;
};

}  // namespace dtfm::compress
