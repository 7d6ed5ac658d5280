// sim::model_cost: what one pipeline stage of a GPT costs — FLOPs per micro-batch (Narayanan et
// al. 2021: 24·b·s·d² + 4·b·s²·d per transformer block forward, backward twice the forward),
// the activation crossing a stage boundary (b·s·d values), parameters per stage (the data-parallel
// all-reduce size) and the memory a device needs for its stage (Korthikanti et al. 2022, eq. 1).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "dtfm/error.hpp"

namespace dtfm::sim {

struct gpt_config {
    int layers = 24;
    int d_model = 2048;
    int heads = 16;
    int sequence = 2048;
    int vocab = 50257;        // 0: no embedding and no output head (a bare stack of blocks)
    int microbatch_size = 1;  // sequences per micro-batch (b)

    // Memory model. Mixed-precision AdamW keeps fp16 weights and gradients, an fp32 master copy and
    // two fp32 moments: 2 + 2 + 4 + 4 + 4 = 16 bytes per parameter. Stored activations are fp16.
    double state_bytes_per_parameter = 16;
    double activation_bytes = 2;

    // GPT-3 XL (1.3B), the model of DT-FM's evaluation (GPT-2's vocabulary).
    static gpt_config gpt3_1_3b() { return gpt_config{}; }
    // The host reference GPT's shapes (nn::gpt_config::tiny() and small(), byte vocabulary).
    static gpt_config tiny() { return {.layers = 8, .d_model = 240, .heads = 4, .sequence = 64, .vocab = 256}; }
    static gpt_config small() { return {.layers = 8, .d_model = 512, .heads = 8, .sequence = 128, .vocab = 256}; }
};

// What one stage runs and holds. Layer split rule: every stage gets ⌊L/S⌋ blocks and the first
// L mod S stages one more; the token + position embedding sits on stage 0 and the final layer
// norm with the (untied) output projection on stage S−1, as in DT-FM's and Megatron's stages.
struct stage_cost {
    int first_layer = 0;
    int layers = 0;
    bool embedding = false;
    bool head = false;
    double forward_flops = 0;   // one micro-batch
    double backward_flops = 0;  // one micro-batch (2 × forward)
    std::size_t parameters = 0;
    double activation_bytes_per_microbatch = 0;  // what the backward needs of one micro-batch
};

namespace detail {

inline void check_config(const gpt_config& c) {
    if (c.layers < 1 || c.d_model < 1 || c.heads < 1 || c.sequence < 1 || c.vocab < 0 || c.microbatch_size < 1)
        throw config_error("gpt_config: layers, d_model, heads, sequence and microbatch_size must be positive, vocab >= 0");
    if (c.d_model % c.heads != 0)
        throw config_error("gpt_config: d_model " + std::to_string(c.d_model) + " is not divisible by heads " +
                           std::to_string(c.heads));
    if (!(c.state_bytes_per_parameter >= 0) || !(c.activation_bytes >= 0))
        throw config_error("gpt_config: byte sizes must be non-negative");
}

}  // namespace detail

inline double block_forward_flops(const gpt_config& c) {
    const double b = c.microbatch_size, s = c.sequence, d = c.d_model;
    return 24 * b * s * d * d + 4 * b * s * s * d;
}

// The logits b·s·d·V multiply-adds; the embedding is a lookup and costs nothing here.
inline double head_forward_flops(const gpt_config& c) {
    return 2.0 * c.microbatch_size * c.sequence * static_cast<double>(c.d_model) * c.vocab;
}

// QKV and output projections 4d² + 4d, MLP 8d² + 5d, two layer norms 4d.
inline std::size_t block_parameters(const gpt_config& c) {
    const auto d = static_cast<std::size_t>(c.d_model);
    return 12 * d * d + 13 * d;
}
inline std::size_t embedding_parameters(const gpt_config& c) {
    if (c.vocab == 0) return 0;
    return (static_cast<std::size_t>(c.vocab) + static_cast<std::size_t>(c.sequence)) * static_cast<std::size_t>(c.d_model);
}
inline std::size_t head_parameters(const gpt_config& c) {
    if (c.vocab == 0) return 0;
    return static_cast<std::size_t>(c.vocab) * static_cast<std::size_t>(c.d_model) + 2 * static_cast<std::size_t>(c.d_model);
}

// Values that cross a stage boundary per micro-batch, forward (activation) and backward (its gradient).
inline std::size_t boundary_elements(const gpt_config& c) {
    return static_cast<std::size_t>(c.microbatch_size) * static_cast<std::size_t>(c.sequence) *
           static_cast<std::size_t>(c.d_model);
}

// Their fp32 bytes: what crosses the boundary uncompressed (a compressor's payload replaces it).
inline double boundary_bytes(const gpt_config& c) { return sizeof(float) * static_cast<double>(boundary_elements(c)); }

// The fp32 gradient of a stage: what its data-parallel all-reduce averages (DT-FM's c_dp).
inline double gradient_bytes(const stage_cost& st) { return sizeof(float) * static_cast<double>(st.parameters); }

// Korthikanti et al. eq. (1): s·b·d·(34 + 5·a·s/d) bytes per block at 16-bit activations, scaled to
// activation_bytes.
inline double block_activation_bytes(const gpt_config& c) {
    const double b = c.microbatch_size, s = c.sequence, d = c.d_model, a = c.heads;
    return s * b * d * (34 + 5 * a * s / d) * (c.activation_bytes / 2);
}

inline std::vector<stage_cost> stage_costs(const gpt_config& c, int stages) {
    detail::check_config(c);
    if (stages < 1 || stages > c.layers)
        throw config_error("stage_costs: " + std::to_string(stages) + " stages for " + std::to_string(c.layers) +
                           " layers (need 1 <= stages <= layers)");
    std::vector<stage_cost> out(static_cast<std::size_t>(stages));
    const int base = c.layers / stages, extra = c.layers % stages;
    const double per_token_bytes = static_cast<double>(boundary_elements(c)) * c.activation_bytes;
    int next = 0;
    for (int s = 0; s < stages; ++s) {
        stage_cost& st = out[static_cast<std::size_t>(s)];
        st.first_layer = next;
        st.layers = base + (s < extra ? 1 : 0);
        next += st.layers;
        st.embedding = s == 0 && c.vocab > 0;
        st.head = s == stages - 1 && c.vocab > 0;
        st.forward_flops = st.layers * block_forward_flops(c) + (st.head ? head_forward_flops(c) : 0);
        st.backward_flops = 2 * st.forward_flops;
        st.parameters = static_cast<std::size_t>(st.layers) * block_parameters(c) +
                        (st.embedding ? embedding_parameters(c) : 0) + (st.head ? head_parameters(c) : 0);
        st.activation_bytes_per_microbatch = st.layers * block_activation_bytes(c);
        if (st.embedding) st.activation_bytes_per_microbatch += per_token_bytes;  // the embedding output
        if (st.head) {
            // The final layer norm's input and the logits, kept for the loss's backward.
            st.activation_bytes_per_microbatch +=
                per_token_bytes + static_cast<double>(c.microbatch_size) * c.sequence * c.vocab * c.activation_bytes;
        }
    }
    return out;
}

// Bytes a device needs for its stage when the schedule holds `in_flight` micro-batches' activations
// at once (GPipe: M; 1F1B: min(S − s, M)): parameter, gradient and optimizer state plus activations.
inline double stage_memory_bytes(const gpt_config& c, const stage_cost& st, int in_flight) {
    return static_cast<double>(st.parameters) * c.state_bytes_per_parameter +
           in_flight * st.activation_bytes_per_microbatch;
}

inline double total_parameters(const gpt_config& c) {
    return static_cast<double>(c.layers) * static_cast<double>(block_parameters(c)) +
           static_cast<double>(embedding_parameters(c) + head_parameters(c));
}

}  // namespace dtfm::sim
