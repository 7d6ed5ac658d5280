// data::sharding: which samples each data-parallel replica trains on at each step, as stable
// sample ids. A pass over a finite training set of `samples` ids repeats every epoch, so AC-SGD's
// delta compressor (keyed by sample id) sees each sample again; replicas never share a sample
// within a step, and the order is a seeded permutation fixed for the run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "dtfm/data/markov.hpp"
#include "dtfm/error.hpp"

namespace dtfm::data {

// Held-out ids live far above the training ids, so no evaluation sample is ever a training one.
inline constexpr std::uint64_t held_out_base = std::uint64_t{1} << 40;

class sharding {
public:
    // Each step consumes `global_batch` samples: replicas × micro_batches × micro_batch.
    sharding(std::uint64_t samples, int replicas, int micro_batches, int micro_batch, std::uint64_t seed = 0)
        : samples_(samples), replicas_(replicas), micro_batches_(micro_batches), micro_batch_(micro_batch) {
        if (replicas < 1 || micro_batches < 1 || micro_batch < 1)
            throw config_error("sharding: replicas, micro-batches and micro-batch size must be positive");
        if (samples < global_batch())
            throw config_error("sharding: " + std::to_string(samples) + " training samples, one step needs " +
                               std::to_string(global_batch()));
        order_.resize(samples);
        std::iota(order_.begin(), order_.end(), std::uint64_t{0});
        std::uint64_t rng = seed ^ 0x5851f42d4c957f2dull;
        for (std::size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[dtfm::detail::splitmix64(rng) % i]);
    }

    std::uint64_t global_batch() const noexcept {
        return static_cast<std::uint64_t>(replicas_) * static_cast<std::uint64_t>(micro_batches_) *
               static_cast<std::uint64_t>(micro_batch_);
    }

    // The ids of micro-batch m of replica r at step s (micro_batch of them).
    std::vector<std::uint64_t> ids(std::uint64_t step, int replica, int microbatch) const {
        if (replica < 0 || replica >= replicas_ || microbatch < 0 || microbatch >= micro_batches_)
            throw config_error("sharding::ids: replica or micro-batch out of range");
        std::vector<std::uint64_t> out(static_cast<std::size_t>(micro_batch_));
        const std::uint64_t first = step * global_batch() +
                                    (static_cast<std::uint64_t>(replica) * static_cast<std::uint64_t>(micro_batches_) +
                                     static_cast<std::uint64_t>(microbatch)) * static_cast<std::uint64_t>(micro_batch_);
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = order_[(first + i) % samples_];
        return out;
    }

    // Held-out evaluation ids: `count` of them, the same on every call.
    static std::vector<std::uint64_t> held_out(std::size_t count) {
        std::vector<std::uint64_t> out(count);
        for (std::size_t i = 0; i < count; ++i) out[i] = held_out_base + i;
        return out;
    }

private:
    std::uint64_t samples_;
    int replicas_, micro_batches_, micro_batch_;
    std::vector<std::uint64_t> order_;
};

}  // namespace dtfm::data
