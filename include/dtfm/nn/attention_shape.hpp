// nn::attention_shape: the dimensions of multi-head causal self-attention over a micro-batch.
#pragma once

#include <cstddef>

namespace dtfm::nn {

struct attention_shape {
    std::size_t batch = 1;    // sequences
    std::size_t seq = 1;      // tokens per sequence (T)
    std::size_t heads = 1;    // H
    std::size_t d_model = 1;  // C, a multiple of H
    std::size_t rows() const noexcept { return batch * seq; }
    std::size_t head_dim() const noexcept { return d_model / heads; }
    std::size_t probs_size() const noexcept { return batch * heads * seq * seq; }
};

}  // namespace dtfm::nn
