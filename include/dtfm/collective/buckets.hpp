// collective::buckets<Collective>: many tensors packed into a few flat buffers (PyTorch DDP's
// gradient buckets, Li et al. 2020), each reduced by its own collective instance on its own
// message ids, so bucket k is on the wire while the backward pass still fills bucket k+1.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "dtfm/collective/operation.hpp"
#include "dtfm/collective/options.hpp"
#include "dtfm/concepts/transport.hpp"
#include "dtfm/error.hpp"

namespace dtfm::collective {

// Tensors are given by size, in the order they become ready (for gradients: the last layer
// first), and go into consecutive buckets of at most bucket_bytes (a larger tensor gets a bucket
// of its own). ready(t, i, values) copies tensor i in; the bucket's all-reduce starts as soon as
// all its tensors are in. finish(out) waits for every bucket and copies the averages out.
// Bucket b's collective uses the tag base.tag + b·ids_per_collective.
template <class Collective>
    requires std::same_as<typename Collective::value_type, float> && std::constructible_from<Collective, options>
class buckets {
public:
    buckets(std::span<const std::size_t> tensor_sizes, std::size_t bucket_bytes, options base = {}) {
        if (bucket_bytes < sizeof(float)) throw config_error("buckets: bucket_bytes must hold at least one value");
        const std::size_t cap = bucket_bytes / sizeof(float);
        std::size_t filled = 0;
        for (std::size_t i = 0; i < tensor_sizes.size(); ++i) {
            const std::size_t n = tensor_sizes[i];
            if (bucket_.empty() || (filled > 0 && filled + n > cap)) {
                starts_.push_back(i);
                sizes_.push_back(0);
                filled = 0;
            }
            bucket_.push_back(starts_.size() - 1);
            offset_.push_back(filled);
            size_.push_back(n);
            filled += n;
            sizes_.back() = filled;
        }
        const std::size_t count = starts_.size();
        if (base.tag + count * ids_per_collective > message_tag::max_id)
            throw config_error("buckets: " + std::to_string(count) + " buckets from tag " + std::to_string(base.tag) +
                               " need message ids beyond 2^24");
        flat_.resize(count);
        missing_.resize(count);
        running_.resize(count);
        collectives_.reserve(count);
        for (std::size_t b = 0; b < count; ++b) {
            flat_[b].resize(sizes_[b]);
            options o = base;
            o.tag = base.tag + static_cast<std::uint32_t>(b) * ids_per_collective;
            collectives_.emplace_back(o);
        }
        rearm();
    }

    std::size_t count() const noexcept { return flat_.size(); }
    std::size_t bucket_of(std::size_t tensor) const { return bucket_.at(tensor); }
    std::span<const float> flat(std::size_t b) const { return flat_.at(b); }
    Collective& collective(std::size_t b) { return collectives_.at(b); }

    template <concepts::transport T>
    void ready(T& t, std::size_t tensor, std::span<const float> values) {
        if (tensor >= size_.size()) throw error("buckets::ready: no tensor " + std::to_string(tensor));
        if (values.size() != size_[tensor])
            throw error("buckets::ready: tensor " + std::to_string(tensor) + " has " + std::to_string(size_[tensor]) +
                        " values, got " + std::to_string(values.size()));
        if (seen_[tensor]) throw error("buckets::ready: tensor " + std::to_string(tensor) + " given twice in one round");
        seen_[tensor] = true;
        const std::size_t b = bucket_[tensor];
        std::copy(values.begin(), values.end(), flat_[b].begin() + static_cast<std::ptrdiff_t>(offset_[tensor]));
        if (--missing_[b] == 0) running_[b] = collectives_[b].allreduce(t, std::span<float>(flat_[b]));
    }

    // out[i] receives tensor i's average. Every tensor must have been given to ready().
    void finish(std::span<const std::span<float>> out) {
        if (out.size() != size_.size())
            throw error("buckets::finish: " + std::to_string(size_.size()) + " tensors, got " + std::to_string(out.size()));
        for (std::size_t i = 0; i < seen_.size(); ++i)
            if (!seen_[i]) throw error("buckets::finish: tensor " + std::to_string(i) + " was never given to ready()");
        for (auto& r : running_) r.wait();
        for (std::size_t i = 0; i < size_.size(); ++i) {
            if (out[i].size() != size_[i]) throw error("buckets::finish: tensor " + std::to_string(i) + " has the wrong size");
            const auto& src = flat_[bucket_[i]];
            std::copy_n(src.begin() + static_cast<std::ptrdiff_t>(offset_[i]), size_[i], out[i].begin());
        }
        rearm();
    }

private:
    void rearm() {
        seen_.assign(size_.size(), false);
        for (std::size_t b = 0; b < starts_.size(); ++b) {
            const std::size_t end = b + 1 < starts_.size() ? starts_[b + 1] : size_.size();
            missing_[b] = end - starts_[b];
            running_[b] = operation();
        }
    }

    std::vector<std::size_t> bucket_, offset_, size_;  // per tensor
    std::vector<std::size_t> starts_, sizes_, missing_;  // per bucket
    std::vector<bool> seen_;
    std::vector<std::vector<float>> flat_;
    std::vector<Collective> collectives_;
    std::vector<operation> running_;
};

}  // namespace dtfm::collective
