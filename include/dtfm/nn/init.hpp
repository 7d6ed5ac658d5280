// nn::normal_generator and the GPT-2 initialisation: normal deviates from splitmix64 (Steele,
// Lea & Flood 2014) through the Box–Muller transform, z = √(−2 ln u₁)·cos(2πu₂), written here so
// that the initial parameters are the same with every standard library. Each tensor draws from
// its own stream, keyed by (seed, layer, tensor), so a model split into stages starts with
// exactly the parameters of the whole model.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>

namespace dtfm::nn {

// splitmix64: a 64-bit state advanced by the golden-ratio increment, mixed on output.
class splitmix64 {
public:
    explicit splitmix64(std::uint64_t seed) noexcept : state_(seed) {}
    std::uint64_t operator()() noexcept {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }

private:
    std::uint64_t state_;
};

// Standard normal deviates, two per pair of uniforms (the second is kept for the next call).
class normal_generator {
public:
    explicit normal_generator(std::uint64_t key) noexcept : bits_(key) {}
    double operator()() noexcept {
        if (has_spare_) {
            has_spare_ = false;
            return spare_;
        }
        constexpr double two_pi = 6.283185307179586;
        const double u1 = static_cast<double>((bits_() >> 11) + 1) * 0x1p-53;  // (0, 1]: log is finite
        const double u2 = static_cast<double>(bits_() >> 11) * 0x1p-53;        // [0, 1)
        const double r = std::sqrt(-2.0 * std::log(u1));
        spare_ = r * std::sin(two_pi * u2);
        has_spare_ = true;
        return r * std::cos(two_pi * u2);
    }

private:
    splitmix64 bits_;
    double spare_ = 0.0;
    bool has_spare_ = false;
};

// The tensors drawn at random; LayerNorm scales (1) and every bias (0) are constants.
enum class gpt_tensor : std::uint64_t {
    token_embedding = 1,
    position_embedding,
    qkv_weight,
    proj_weight,
    fc_weight,
    out_weight,
    head_weight
};

// The stream of one tensor: layer is the block index, or 0 for the embeddings and the head.
inline std::uint64_t parameter_key(std::uint64_t seed, std::uint64_t layer, gpt_tensor tensor) noexcept {
    splitmix64 a(seed);
    splitmix64 b(a() ^ layer);
    splitmix64 c(b() ^ static_cast<std::uint64_t>(tensor));
    return c();
}

// t[i] ~ N(0, stddev²), the i-th deviate of stream key.
inline void fill_normal(std::span<float> t, double stddev, std::uint64_t key) {
    normal_generator g(key);
    for (float& v : t) v = static_cast<float>(stddev * g());
}

}  // namespace dtfm::nn
