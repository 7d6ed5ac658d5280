// nn::gpt_config: the shape of a GPT-2-style decoder (Radford et al. 2019) — vocabulary, context,
// width, heads, depth — and the seed its parameters are drawn from. Untied output head, no head
// bias, so parameter_count() = V·C + T·C + L·(12C² + 13C) + 2C + C·V.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "dtfm/error.hpp"

namespace dtfm::nn {

struct gpt_config {
    std::size_t vocab = 256;    // token ids in [0, vocab)
    std::size_t context = 64;   // tokens per sequence (T); the position table has this many rows
    std::size_t d_model = 256;  // C
    std::size_t heads = 4;      // H, dividing C
    std::size_t layers = 8;     // transformer blocks (L)
    std::uint64_t seed = 0;     // the initial parameters are a function of it alone

    // 5.69M parameters, byte-level vocabulary, 8 blocks (2 per stage over 4 stages): a micro-batch
    // of 8 × 64 tokens trains (forward + backward) in about 0.28 s of CPU time on one core
    // (OpenBLAS, 1 thread; dtfm_bench_nn).
    static gpt_config tiny() { return {.vocab = 256, .context = 64, .d_model = 240, .heads = 4, .layers = 8, .seed = 0}; }
    // 25.5M parameters: the next size up, ~4.5× tiny's FLOPs per token, still trainable on a CPU.
    static gpt_config small() { return {.vocab = 256, .context = 128, .d_model = 512, .heads = 8, .layers = 8, .seed = 0}; }

    static std::size_t block_parameter_count(std::size_t d) { return 12 * d * d + 13 * d; }
    std::size_t embedding_parameter_count() const { return vocab * d_model + context * d_model; }
    std::size_t head_parameter_count() const { return 2 * d_model + d_model * vocab; }
    std::size_t parameter_count() const {
        return embedding_parameter_count() + layers * block_parameter_count(d_model) + head_parameter_count();
    }

    // Throws config_error for a shape the model cannot have.
    void validate() const {
        if (vocab == 0 || context == 0 || d_model == 0 || heads == 0 || layers == 0)
            throw config_error("nn::gpt_config: vocab, context, d_model, heads and layers must be positive");
        if (d_model % heads != 0)
            throw config_error("nn::gpt_config: d_model " + std::to_string(d_model) + " is not a multiple of heads " +
                               std::to_string(heads));
        if (vocab > (std::size_t{1} << 31)) throw config_error("nn::gpt_config: vocab does not fit a 32-bit token id");
    }
};

}  // namespace dtfm::nn
