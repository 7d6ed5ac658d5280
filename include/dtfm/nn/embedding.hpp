// nn::embedding: GPT-2's input, a learned token embedding plus a learned position embedding,
// out[b, t] = wte[token[b, t]] + wpe[t]; backward scatters dout into both tables.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dtfm/config.hpp"
#include "dtfm/nn/detail/shape.hpp"

namespace dtfm::nn {

struct embedding_shape {
    std::size_t batch = 1;    // sequences
    std::size_t seq = 1;      // tokens per sequence; wpe holds at least this many rows
    std::size_t vocab = 1;    // rows of wte
    std::size_t d_model = 1;  // C
};

namespace detail {

// Row r of the output from its token's and its position's rows (shared with the CUDA stage).
DTFM_HOST_DEVICE void embedding_row(const float* token_row, const float* position_row, float* out, std::size_t C) {
    for (std::size_t i = 0; i < C; ++i) out[i] = token_row[i] + position_row[i];
}

// Column i of both tables' gradients, every row's contribution added in row order (as the host
// loop adds them): the CUDA stage runs one column per thread, so no two threads touch one value.
// tokens must be in [0, vocab).
DTFM_HOST_DEVICE void embedding_backward_column(std::size_t i, const std::int32_t* tokens, const float* dout, float* dwte,
                                                float* dwpe, std::size_t rows, std::size_t seq, std::size_t C) {
    for (std::size_t r = 0; r < rows; ++r) {
        const float d = dout[r * C + i];
        dwte[static_cast<std::size_t>(tokens[r]) * C + i] += d;
        dwpe[(r % seq) * C + i] += d;
    }
}

}  // namespace detail

// tokens: batch·seq ids in [0, vocab); wte [vocab × C]; wpe [seq × C]; out [batch·seq × C].
inline void embedding_forward(std::span<const std::int32_t> tokens, std::span<const float> wte, std::span<const float> wpe,
                              std::span<float> out, const embedding_shape& s) {
    const std::size_t C = s.d_model;
    detail::expect_size(tokens.size(), s.batch * s.seq, "embedding_forward", "tokens");
    detail::expect_size(wte.size(), s.vocab * C, "embedding_forward", "wte");
    detail::expect_size(wpe.size(), s.seq * C, "embedding_forward", "wpe");
    detail::expect_size(out.size(), s.batch * s.seq * C, "embedding_forward", "out");
    for (std::size_t b = 0; b < s.batch; ++b)
        for (std::size_t t = 0; t < s.seq; ++t) {
            const std::size_t r = b * s.seq + t;
            detail::embedding_row(wte.data() + detail::token_row(tokens[r], s.vocab, "embedding_forward") * C,
                                  wpe.data() + t * C, out.data() + r * C, C);
        }
}

// dwte and dwpe accumulate.
inline void embedding_backward(std::span<const std::int32_t> tokens, std::span<const float> dout, std::span<float> dwte,
                               std::span<float> dwpe, const embedding_shape& s) {
    const std::size_t C = s.d_model;
    detail::expect_size(tokens.size(), s.batch * s.seq, "embedding_backward", "tokens");
    detail::expect_size(dout.size(), s.batch * s.seq * C, "embedding_backward", "dout");
    detail::expect_size(dwte.size(), s.vocab * C, "embedding_backward", "dwte");
    detail::expect_size(dwpe.size(), s.seq * C, "embedding_backward", "dwpe");
    for (std::size_t b = 0; b < s.batch; ++b)
        for (std::size_t t = 0; t < s.seq; ++t) {
            const std::size_t r = b * s.seq + t;
            float* e = dwte.data() + detail::token_row(tokens[r], s.vocab, "embedding_backward") * C;
            float* p = dwpe.data() + t * C;
            const float* d = dout.data() + r * C;
            for (std::size_t i = 0; i < C; ++i) {
                e[i] += d[i];
                p[i] += d[i];
            }
        }
}

}  // namespace dtfm::nn
