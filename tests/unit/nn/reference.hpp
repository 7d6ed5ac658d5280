// fp64 reference forwards of every layer of dtfm::nn, written as plain loops straight from the
// equations, the GPT test model and its batches, and the finite-difference gradient check the nn
// tests (and the CUDA stage's, tests/cuda/gpt_checks.hpp) share: central differences
// of the fp64 reference (step 1e-5, so truncation and rounding stay near 1e-10) against the
// analytic fp32 backward, compared as max|analytic − numeric| / max|numeric| over a tensor.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dtfm/nn/gpt_config.hpp"
#include "dtfm/nn/init.hpp"
#include "dtfm/nn/block_layout.hpp"
#include "dtfm/nn/layer_norm.hpp"

namespace ref {

using vec = std::vector<double>;
using std::size_t;

inline vec to_double(std::span<const float> x) { return vec(x.begin(), x.end()); }

// The small GPT the stage tests (host and CUDA) use, and micro-batch m of it: a deterministic
// pattern of ids over the vocabulary, each target the id that follows its token.
inline dtfm::nn::gpt_config tiny_test_config() {
    return {.vocab = 11, .context = 5, .d_model = 8, .heads = 2, .layers = 4, .seed = 3};
}
struct test_batch {
    std::vector<std::int32_t> tokens, targets;
    test_batch(const dtfm::nn::gpt_config& c, int micro_batch, int m) {
        const std::size_t n = static_cast<std::size_t>(micro_batch) * c.context;
        for (std::size_t i = 0; i <= n; ++i)
            tokens.push_back(static_cast<std::int32_t>((i * 7 + static_cast<std::size_t>(m) * 3 + i * i) % c.vocab));
        targets.assign(tokens.begin() + 1, tokens.end());
        tokens.pop_back();
    }
};

// Deterministic test values: n floats ~ N(mean, scale²).
inline std::vector<float> random_floats(size_t n, std::uint64_t seed, double scale = 1.0, double mean = 0.0) {
    dtfm::nn::normal_generator g(seed);
    std::vector<float> v(n);
    for (float& x : v) x = static_cast<float>(mean + scale * g());
    return v;
}

inline vec linear(const vec& x, const vec& w, const vec& b, size_t n, size_t in, size_t out) {
    vec y(n * out);
    for (size_t r = 0; r < n; ++r)
        for (size_t j = 0; j < out; ++j) {
            double s = b.empty() ? 0.0 : b[j];
            for (size_t i = 0; i < in; ++i) s += x[r * in + i] * w[i * out + j];
            y[r * out + j] = s;
        }
    return y;
}

inline vec layer_norm(const vec& x, const vec& g, const vec& b, size_t n, size_t c) {
    vec y(n * c);
    for (size_t r = 0; r < n; ++r) {
        double m = 0.0, v = 0.0;
        for (size_t i = 0; i < c; ++i) m += x[r * c + i];
        m /= static_cast<double>(c);
        for (size_t i = 0; i < c; ++i) v += (x[r * c + i] - m) * (x[r * c + i] - m);
        v /= static_cast<double>(c);
        const double rs = 1.0 / std::sqrt(v + static_cast<double>(dtfm::nn::layer_norm_epsilon));
        for (size_t i = 0; i < c; ++i) y[r * c + i] = (x[r * c + i] - m) * rs * g[i] + b[i];
    }
    return y;
}

inline vec gelu(const vec& x) {
    vec y(x.size());
    const double k = std::sqrt(2.0 / 3.14159265358979323846);
    for (size_t i = 0; i < x.size(); ++i) y[i] = 0.5 * x[i] * (1.0 + std::tanh(k * (x[i] + 0.044715 * x[i] * x[i] * x[i])));
    return y;
}

// qkv [B·T × 3C] → out [B·T × C], causal softmax attention per head.
inline vec attention(const vec& qkv, size_t B, size_t T, size_t H, size_t C) {
    const size_t hd = C / H;
    vec out(B * T * C, 0.0);
    std::vector<double> s(T);
    for (size_t b = 0; b < B; ++b)
        for (size_t h = 0; h < H; ++h)
            for (size_t i = 0; i < T; ++i) {
                const double* q = &qkv[(b * T + i) * 3 * C + h * hd];
                double mx = -1e300;
                for (size_t j = 0; j <= i; ++j) {
                    const double* k = &qkv[(b * T + j) * 3 * C + C + h * hd];
                    double d = 0.0;
                    for (size_t e = 0; e < hd; ++e) d += q[e] * k[e];
                    s[j] = d / std::sqrt(static_cast<double>(hd));
                    mx = std::max(mx, s[j]);
                }
                double z = 0.0;
                for (size_t j = 0; j <= i; ++j) z += (s[j] = std::exp(s[j] - mx));
                for (size_t j = 0; j <= i; ++j) {
                    const double* v = &qkv[(b * T + j) * 3 * C + 2 * C + h * hd];
                    for (size_t e = 0; e < hd; ++e) out[(b * T + i) * C + h * hd + e] += s[j] / z * v[e];
                }
            }
    return out;
}

inline vec embedding(std::span<const std::int32_t> tokens, const vec& wte, const vec& wpe, size_t B, size_t T, size_t C) {
    vec out(B * T * C);
    for (size_t b = 0; b < B; ++b)
        for (size_t t = 0; t < T; ++t)
            for (size_t i = 0; i < C; ++i)
                out[(b * T + t) * C + i] = wte[static_cast<size_t>(tokens[b * T + t]) * C + i] + wpe[t * C + i];
    return out;
}

inline double cross_entropy(const vec& z, std::span<const std::int32_t> y, size_t n, size_t V) {
    double loss = 0.0;
    for (size_t r = 0; r < n; ++r) {
        double mx = -1e300, s = 0.0;
        for (size_t i = 0; i < V; ++i) mx = std::max(mx, z[r * V + i]);
        for (size_t i = 0; i < V; ++i) s += std::exp(z[r * V + i] - mx);
        loss += std::log(s) + mx - z[r * V + static_cast<size_t>(y[r])];
    }
    return loss / static_cast<double>(n);
}

inline vec part(const vec& all, dtfm::nn::tensor_slice s) {
    return vec(all.begin() + static_cast<std::ptrdiff_t>(s.offset), all.begin() + static_cast<std::ptrdiff_t>(s.offset + s.size));
}

// One pre-LayerNorm block over its parameters in block_layout order.
inline vec block(const vec& x, const vec& p, size_t B, size_t T, size_t H, size_t C) {
    const dtfm::nn::block_layout l(C);
    const size_t n = B * T;
    const vec a = linear(attention(linear(layer_norm(x, part(p, l.ln1_gamma), part(p, l.ln1_beta), n, C),
                                          part(p, l.qkv_weight), part(p, l.qkv_bias), n, C, 3 * C),
                                   B, T, H, C),
                         part(p, l.proj_weight), part(p, l.proj_bias), n, C, C);
    vec mid(n * C);
    for (size_t i = 0; i < n * C; ++i) mid[i] = x[i] + a[i];
    const vec m = linear(gelu(linear(layer_norm(mid, part(p, l.ln2_gamma), part(p, l.ln2_beta), n, C), part(p, l.fc_weight),
                                     part(p, l.fc_bias), n, C, 4 * C)),
                         part(p, l.out_weight), part(p, l.out_bias), n, 4 * C, C);
    vec y(n * C);
    for (size_t i = 0; i < n * C; ++i) y[i] = mid[i] + m[i];
    return y;
}

// The whole model's mean loss over B sequences, parameters in gpt_stage's 1-stage order
// (wte, wpe, blocks, γ_f, β_f, W_head).
inline double gpt(const dtfm::nn::gpt_config& c, const vec& p, std::span<const std::int32_t> tokens,
                  std::span<const std::int32_t> targets, size_t B) {
    const size_t V = c.vocab, T = c.context, C = c.d_model, n = B * T;
    const size_t blk = dtfm::nn::gpt_config::block_parameter_count(C);
    size_t o = 0;
    auto take = [&](size_t k) {
        const dtfm::nn::tensor_slice s{o, k};
        o += k;
        return part(p, s);
    };
    const vec wte = take(V * C), wpe = take(T * C);
    vec x = embedding(tokens, wte, wpe, B, T, C);
    for (size_t l = 0; l < c.layers; ++l) x = block(x, take(blk), B, T, c.heads, C);
    const vec g = take(C), b = take(C), w = take(C * V);
    return cross_entropy(linear(layer_norm(x, g, b, n, C), w, {}, n, C, V), targets, n, V);
}

// ∂f/∂x_i by central differences, for every i (x is restored).
template <class F>
vec numeric_gradient(vec& x, F&& f, double h = 1e-5) {
    vec g(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
        const double keep = x[i];
        x[i] = keep + h;
        const double up = f();
        x[i] = keep - h;
        const double down = f();
        x[i] = keep;
        g[i] = (up - down) / (2 * h);
    }
    return g;
}

// Σ w·y: the scalar whose gradient with respect to y is w (the upstream gradient of a layer).
inline double dot(const vec& w, const vec& y) {
    double s = 0.0;
    for (size_t i = 0; i < y.size(); ++i) s += w[i] * y[i];
    return s;
}

// max|a − n| / max|n|: the error of a gradient relative to its largest entry.
inline double relative_error(std::span<const float> analytic, const vec& numeric) {
    double err = 0.0, scale = 0.0;
    for (size_t i = 0; i < numeric.size(); ++i) {
        err = std::max(err, std::abs(static_cast<double>(analytic[i]) - numeric[i]));
        scale = std::max(scale, std::abs(numeric[i]));
    }
    return scale == 0.0 ? err : err / scale;
}

}  // namespace ref
