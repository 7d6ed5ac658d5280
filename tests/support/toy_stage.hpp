// A small language model cut into pipeline stages, for testing the pipeline driver without the
// GPT: token embedding, residual tanh layers h ← h + tanh(W·h + b), a linear head and the mean
// cross-entropy. Parameters depend only on (seed, layer), so any split starts from the same model.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dtfm/concepts/stage.hpp"
#include "dtfm/spaces.hpp"

namespace dtfm::test {

struct toy_config {
    int vocab = 12, width = 8, layers = 4, context = 6;
};

class toy_stage {
public:
    using stage_concept = dtfm::stage_tag;
    using memory_space = dtfm::host_space;
    using value_type = float;
    using input_type = float;
    using output_type = float;

    toy_stage(toy_config c, int stage, int stages, int micro_batch, int slots)
        : c_(c), first_(stage == 0), last_(stage == stages - 1), batch_(micro_batch), slots_(slots) {
        begin_ = c.layers * stage / stages;
        end_ = c.layers * (stage + 1) / stages;
        const auto w = static_cast<std::size_t>(c.width), v = static_cast<std::size_t>(c.vocab);
        std::size_t n = 0;
        if (first_) n += v * w;
        n += static_cast<std::size_t>(end_ - begin_) * (w * w + w);
        if (last_) n += w * v;
        params_.resize(n);
        grads_.assign(n, 0.0f);
        std::size_t at = 0;
        auto fill = [&](std::size_t count, std::uint64_t key, float scale) {
            std::uint64_t s = key * 0x9e3779b97f4a7c15ull + 12345;
            for (std::size_t i = 0; i < count; ++i) {
                s ^= s << 13, s ^= s >> 7, s ^= s << 17;
                params_[at++] = scale * (static_cast<float>(s % 2001) / 1000.0f - 1.0f);
            }
        };
        if (first_) fill(v * w, 1000, 0.5f);
        for (int l = begin_; l < end_; ++l) fill(w * w + w, static_cast<std::uint64_t>(l) + 1, 0.4f);
        if (last_) fill(w * v, 2000, 0.5f);
        const std::size_t acts = tokens_per_batch() * w;
        saved_.assign(static_cast<std::size_t>(slots) * static_cast<std::size_t>(end_ - begin_ + 1), std::vector<float>(acts));
        tokens_.resize(static_cast<std::size_t>(slots));
        targets_.resize(static_cast<std::size_t>(slots));
    }

    bool first() const { return first_; }
    bool last() const { return last_; }
    std::size_t input_size() const { return first_ ? 0 : tokens_per_batch() * static_cast<std::size_t>(c_.width); }
    std::size_t output_size() const { return last_ ? 1 : tokens_per_batch() * static_cast<std::size_t>(c_.width); }
    std::span<float> parameters() { return params_; }
    std::span<float> gradients() { return grads_; }
    void zero_gradients() { std::fill(grads_.begin(), grads_.end(), 0.0f); }

    void feed(int m, std::span<const std::int32_t> tokens, std::span<const std::int32_t> targets) {
        const auto s = slot(m);
        if (first_) tokens_[s].assign(tokens.begin(), tokens.end());
        if (last_) targets_[s].assign(targets.begin(), targets.end());
    }

    void forward(int m, std::span<const float> in, std::span<float> out) {
        const auto w = static_cast<std::size_t>(c_.width), n = tokens_per_batch();
        std::vector<float>& h0 = act(m, 0);
        if (first_) {
            for (std::size_t t = 0; t < n; ++t)
                for (std::size_t j = 0; j < w; ++j) h0[t * w + j] = params_[static_cast<std::size_t>(tokens_[slot(m)][t]) * w + j];
        } else {
            std::copy(in.begin(), in.end(), h0.begin());
        }
        for (int l = begin_; l < end_; ++l) {
            const float* W = layer(l);
            const float* b = W + w * w;
            const auto& h = act(m, l - begin_);
            auto& next = act(m, l - begin_ + 1);
            for (std::size_t t = 0; t < n; ++t)
                for (std::size_t i = 0; i < w; ++i) {
                    float z = b[i];
                    for (std::size_t j = 0; j < w; ++j) z += W[i * w + j] * h[t * w + j];
                    next[t * w + i] = h[t * w + i] + std::tanh(z);
                }
        }
        const auto& top = act(m, end_ - begin_);
        if (!last_) {
            std::copy(top.begin(), top.end(), out.begin());
            return;
        }
        out[0] = static_cast<float>(loss_and_head(m, top, nullptr, nullptr));
    }

    void backward(int m, std::span<const float> grad_out, std::span<float> grad_in) {
        const auto w = static_cast<std::size_t>(c_.width), n = tokens_per_batch();
        std::vector<float> g(n * w, 0.0f);
        if (last_) {
            loss_and_head(m, act(m, end_ - begin_), &g, &grad_out[0]);
        } else {
            std::copy(grad_out.begin(), grad_out.end(), g.begin());
        }
        for (int l = end_ - 1; l >= begin_; --l) {
            const float* W = layer(l);
            const float* b = W + w * w;
            float* gW = grads_.data() + (W - params_.data());
            float* gb = gW + w * w;
            const auto& h = act(m, l - begin_);
            std::vector<float> gh(g);  // the residual path
            for (std::size_t t = 0; t < n; ++t)
                for (std::size_t i = 0; i < w; ++i) {
                    float z = b[i];
                    for (std::size_t j = 0; j < w; ++j) z += W[i * w + j] * h[t * w + j];
                    const float th = std::tanh(z);
                    const float dz = g[t * w + i] * (1 - th * th);
                    gb[i] += dz;
                    for (std::size_t j = 0; j < w; ++j) {
                        gW[i * w + j] += dz * h[t * w + j];
                        gh[t * w + j] += dz * W[i * w + j];
                    }
                }
            g.swap(gh);
        }
        if (first_) {
            for (std::size_t t = 0; t < n; ++t)
                for (std::size_t j = 0; j < w; ++j) grads_[static_cast<std::size_t>(tokens_[slot(m)][t]) * w + j] += g[t * w + j];
        } else {
            std::copy(g.begin(), g.end(), grad_in.begin());
        }
    }

private:
    std::size_t tokens_per_batch() const { return static_cast<std::size_t>(batch_) * static_cast<std::size_t>(c_.context); }
    std::size_t slot(int m) const { return static_cast<std::size_t>(m % slots_); }
    std::vector<float>& act(int m, int k) { return saved_[slot(m) * static_cast<std::size_t>(end_ - begin_ + 1) + static_cast<std::size_t>(k)]; }
    const float* layer(int l) const {
        const auto w = static_cast<std::size_t>(c_.width);
        return params_.data() + (first_ ? static_cast<std::size_t>(c_.vocab) * w : 0) + static_cast<std::size_t>(l - begin_) * (w * w + w);
    }

    // Mean cross-entropy of the head on `top`; with g, adds d(scale·loss)/d(top) into g and the
    // head's gradient into grads_.
    double loss_and_head(int m, const std::vector<float>& top, std::vector<float>* g, const float* scale) {
        const auto w = static_cast<std::size_t>(c_.width), v = static_cast<std::size_t>(c_.vocab), n = tokens_per_batch();
        const std::size_t head = params_.size() - w * v;
        double loss = 0;
        std::vector<double> logits(v);
        for (std::size_t t = 0; t < n; ++t) {
            double mx = -1e300;
            for (std::size_t k = 0; k < v; ++k) {
                double z = 0;
                for (std::size_t j = 0; j < w; ++j) z += static_cast<double>(params_[head + j * v + k]) * top[t * w + j];
                logits[k] = z;
                mx = std::max(mx, z);
            }
            double sum = 0;
            for (auto& z : logits) sum += std::exp(z - mx);
            const auto target = static_cast<std::size_t>(targets_[slot(m)][t]);
            loss += -(logits[target] - mx - std::log(sum));
            if (g) {
                for (std::size_t k = 0; k < v; ++k) {
                    const double p = std::exp(logits[k] - mx) / sum - (k == target ? 1.0 : 0.0);
                    const auto d = static_cast<float>(p * static_cast<double>(*scale) / static_cast<double>(n));
                    for (std::size_t j = 0; j < w; ++j) {
                        grads_[head + j * v + k] += d * top[t * w + j];
                        (*g)[t * w + j] += d * params_[head + j * v + k];
                    }
                }
            }
        }
        return loss / static_cast<double>(n);
    }

    toy_config c_;
    bool first_, last_;
    int batch_, slots_, begin_ = 0, end_ = 0;
    std::vector<float> params_, grads_;
    std::vector<std::vector<float>> saved_;
    std::vector<std::vector<std::int32_t>> tokens_, targets_;
};

}  // namespace dtfm::test
