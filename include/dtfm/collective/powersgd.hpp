// collective::powersgd<Rank>: PowerSGD (Vogels et al. 2019), as PyTorch DDP's powerSGD_hook does it.
// The buffer is viewed as matrices; for each, with error feedback and a warm-started Q:
//     M = G + E;  P = M Q;  P ← average P;  P ← orthonormal columns of P;
//     Q = Mᵀ P;   Q ← average Q;  M̂ = P Qᵀ;  E = M − M̂;  the result is M̂,
// two all-reduces of Rank·(rows + cols) values instead of one of rows·cols. Since P is the same
// on every rank, P Q̄ᵀ = P Pᵀ M̄: the projection of the average onto a shared rank-Rank subspace,
// which one power-iteration step per call (the warm start) turns towards the average's top one.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dtfm/collective/operation.hpp"
#include "dtfm/collective/options.hpp"
#include "dtfm/collective/ring_allreduce.hpp"
#include "dtfm/compress/random.hpp"
#include "dtfm/concepts/collective.hpp"
#include "dtfm/concepts/transport.hpp"
#include "dtfm/error.hpp"

namespace dtfm::collective {

// A rows × cols matrix stored row-major in the flat buffer.
struct matrix_shape {
    std::size_t rows = 0;
    std::size_t cols = 0;
};

// A layout is a list of matrix shapes covering the buffer in order, exactly (one per gradient
// tensor, as the hook views a tensor as shape[0] × the rest). With no layout, the buffer is one
// near-square matrix, cols = ⌈√n⌉, rows = ⌈n / cols⌉, zero-padded at the end. Matrices with
// min(rows, cols) ≤ Rank (vectors among them) would not shrink: they are averaged uncompressed.
// Every rank ends with the same values (M̂ of the average); the errors each rank keeps make the
// running mean of the results converge to the running mean of the averages. The buffer size is
// fixed by the first call (reset() forgets it with the errors and Q). The two all-reduces run on an
// inner ring_allreduce with this collective's tag (ids tag and tag + 1). After a failed call (a
// timeout) the errors are in an unknown state: reset() on every rank before going on. With one rank
// the buffer is left as it is, as every collective leaves it.
template <int Rank>
    requires(Rank >= 1)
class powersgd {
public:
    using collective_concept = collective_tag;
    using value_type = float;
    static constexpr std::size_t approximation_rank = static_cast<std::size_t>(Rank);

    // seed draws the first Q (the same on every rank: give every rank the same seed).
    explicit powersgd(std::vector<matrix_shape> layout = {}, options o = {}, std::uint64_t seed = 0)
        : layout_(std::move(layout)), options_(o), seed_(seed), ring_(o) {
        dtfm::detail::check_options(o, "powersgd");
        for (const auto& s : layout_)
            if (s.rows == 0 || s.cols == 0)
                throw config_error("powersgd: a " + std::to_string(s.rows) + " x " + std::to_string(s.cols) + " matrix in the layout is empty");
    }
    explicit powersgd(options o) : powersgd(std::vector<matrix_shape>{}, o) {}

    template <concepts::transport Tr>
    operation allreduce(Tr& t, std::span<float> data) {
        return worker_->submit([this, &t, data] { allreduce_blocking(t, data); });
    }

    template <concepts::transport Tr>
    void allreduce_blocking(Tr& t, std::span<float> data) {
        if (t.size() == 1 || data.empty()) return;
        size_for(data.size());
        for (const auto& b : blocks_) {
            const auto values = data.subspan(b.begin, b.size);
            if (!b.compressed) {
                std::copy(values.begin(), values.end(), flat_.begin() + static_cast<std::ptrdiff_t>(b.flat_at));
                continue;
            }
            float* m = error_.data() + b.m_at;  // M = G + E, in place of E
            for (std::size_t i = 0; i < b.size; ++i) m[i] += values[i];
            multiply(m, b.rows, b.cols, q_.data() + b.q_at, flat_.data() + b.flat_at);
        }
        ring_.allreduce_blocking(t, std::span<float>(flat_));
        for (std::size_t k = 0; k < blocks_.size(); ++k) {
            const auto& b = blocks_[k];
            if (!b.compressed) {
                const auto from = flat_.begin() + static_cast<std::ptrdiff_t>(b.flat_at);
                std::copy(from, from + static_cast<std::ptrdiff_t>(b.size), data.begin() + static_cast<std::ptrdiff_t>(b.begin));
                continue;
            }
            orthonormalise(flat_.data() + b.flat_at, b.rows, k);
            multiply_transposed(error_.data() + b.m_at, b.rows, b.cols, flat_.data() + b.flat_at, q_.data() + b.q_at);
        }
        ring_.allreduce_blocking(t, std::span<float>(q_));
        for (const auto& b : blocks_)
            if (b.compressed) reconstruct(b, data.subspan(b.begin, b.size));
        traffic_.value_bytes += data.size() * sizeof(float);
        traffic_.payload_bytes += (flat_.size() + q_.size()) * sizeof(float);
        ++step_;
    }

    // Forgets the buffer size, the errors, Q and the step (every rank must reset together).
    void reset() {
        size_ = 0;
        step_ = 0;
        blocks_.clear();
    }

    // n / (values all-reduced per call) for a buffer of n values under this layout: with one
    // compressed matrix, n / (Rank·(rows + cols)). Raises config_error when the layout does not
    // cover n values.
    double compression_ratio(std::size_t n) const {
        std::size_t sent = 0;
        for (const auto& b : plan(n)) sent += b.compressed ? approximation_rank * (b.rows + b.cols) : b.size;
        return sent == 0 ? 1.0 : static_cast<double>(n) / static_cast<double>(sent);
    }

    // Bytes handed to the two all-reduces against the buffer's bytes (a ring moves 2(P−1)/P of
    // either on every rank, so their ratio is the wire's).
    traffic sent() const noexcept { return traffic_; }
    std::uint64_t step() const noexcept { return step_; }
    const options& settings() const noexcept { return options_; }

private:
    struct block {
        std::size_t begin = 0;  // first value in the buffer
        std::size_t size = 0;   // values in the buffer (rows·cols but for the default's padding)
        std::size_t rows = 0;
        std::size_t cols = 0;
        bool compressed = false;
        std::size_t m_at = 0;     // error_: rows·cols (compressed only)
        std::size_t q_at = 0;     // q_: cols·Rank (compressed only)
        std::size_t flat_at = 0;  // flat_: rows·Rank of P, or the size values themselves
    };

    std::vector<block> plan(std::size_t n) const {
        std::vector<matrix_shape> shapes = layout_;
        if (shapes.empty() && n > 0) {
            std::size_t cols = static_cast<std::size_t>(std::sqrt(static_cast<double>(n)));
            while (cols * cols < n) ++cols;
            while (cols > 1 && (cols - 1) * (cols - 1) >= n) --cols;
            shapes.push_back({(n + cols - 1) / cols, cols});
        }
        std::vector<block> blocks;
        std::size_t at = 0, m_at = 0, q_at = 0, flat_at = 0;
        for (const auto& s : shapes) {
            // Only the default matrix is padded; a given layout must cover the buffer exactly.
            if (!layout_.empty() && (s.cols > n - at || s.rows > (n - at) / s.cols))
                throw config_error("powersgd: the layout's matrices hold more than the buffer's " + std::to_string(n) + " values");
            block b;
            b.begin = at;
            b.size = std::min(s.rows * s.cols, n - at);
            b.rows = s.rows;
            b.cols = s.cols;
            b.compressed = std::min(s.rows, s.cols) > approximation_rank;
            if (b.compressed) {
                b.m_at = m_at;
                b.q_at = q_at;
                m_at += s.rows * s.cols;
                q_at += s.cols * approximation_rank;
            }
            b.flat_at = flat_at;
            flat_at += b.compressed ? s.rows * approximation_rank : b.size;
            at += b.size;
            blocks.push_back(b);
        }
        if (at != n)
            throw config_error("powersgd: the layout's matrices hold " + std::to_string(at) + " values, the buffer " + std::to_string(n));
        return blocks;
    }

    void size_for(std::size_t n) {
        if (size_ == n && !blocks_.empty()) return;
        if (size_ != 0)
            throw error("powersgd: " + std::to_string(n) + " values, this instance carries errors for " + std::to_string(size_) +
                        " (call reset() to change the buffer size, or use one instance per bucket)");
        blocks_ = plan(n);
        size_ = n;
        std::size_t m = 0, q = 0, flat = 0;
        for (const auto& b : blocks_) {
            if (b.compressed) {
                m = b.m_at + b.rows * b.cols;
                q = b.q_at + b.cols * approximation_rank;
            }
            flat = b.flat_at + (b.compressed ? b.rows * approximation_rank : b.size);
        }
        error_.assign(m, 0.0f);
        flat_.assign(flat, 0.0f);
        q_.assign(q, 0.0f);
        // The first Q: the same draws on every rank.
        for (std::size_t k = 0; k < blocks_.size(); ++k) {
            const auto& b = blocks_[k];
            if (!b.compressed) continue;
            const std::uint64_t key = compress::stream_key(seed_, 0, k);
            for (std::size_t i = 0; i < b.cols * approximation_rank; ++i) q_[b.q_at + i] = normal(key, i);
        }
    }

    // About N(0, 1): a centred sum of four uniforms, scaled to unit variance. Integer draws and
    // float sums only, so every rank on every machine draws the same bits.
    static float normal(std::uint64_t key, std::uint64_t i) {
        float s = 0.0f;
        for (std::uint64_t k = 0; k < 4; ++k) s += compress::uniform01(compress::draw(key, 4 * i + k));
        return (s - 2.0f) * 1.7320508f;  // variance of the sum: 4/12
    }

    // P (rows × Rank) = M (rows × cols) Q (cols × Rank): one pass over M, row by row.
    static void multiply(const float* m, std::size_t rows, std::size_t cols, const float* q, float* p) {
        for (std::size_t i = 0; i < rows; ++i) {
            float acc[Rank] = {};
            const float* row = m + i * cols;
            for (std::size_t k = 0; k < cols; ++k) {
                const float v = row[k];
                const float* qk = q + k * approximation_rank;
                for (std::size_t c = 0; c < approximation_rank; ++c) acc[c] += v * qk[c];
            }
            for (std::size_t c = 0; c < approximation_rank; ++c) p[i * approximation_rank + c] = acc[c];
        }
    }

    // Q (cols × Rank) = Mᵀ (cols × rows) P (rows × Rank): also one pass over M, row by row.
    static void multiply_transposed(const float* m, std::size_t rows, std::size_t cols, const float* p, float* q) {
        std::fill(q, q + cols * approximation_rank, 0.0f);
        for (std::size_t i = 0; i < rows; ++i) {
            const float* row = m + i * cols;
            const float* pi = p + i * approximation_rank;
            for (std::size_t k = 0; k < cols; ++k) {
                const float v = row[k];
                float* qk = q + k * approximation_rank;
                for (std::size_t c = 0; c < approximation_rank; ++c) qk[c] += v * pi[c];
            }
        }
    }

    // Gram–Schmidt on P's columns, each projected out twice ("twice is enough": one pass loses
    // orthogonality in floats when a column nearly lies in the span of the others). A column that
    // (nearly) vanishes — M of lower rank than Rank, or zero — is replaced by a drawn one, so that
    // Q = Mᵀ P does not lose that column for good; P is the same on every rank, and so is the draw.
    void orthonormalise(float* p, std::size_t rows, std::size_t block_index) const {
        const std::size_t r = approximation_rank;
        auto norm = [&](std::size_t c) {
            double s = 0;
            for (std::size_t i = 0; i < rows; ++i) s += static_cast<double>(p[i * r + c]) * p[i * r + c];
            return std::sqrt(s);
        };
        auto project_out = [&](std::size_t c) {
            for (int pass = 0; pass < 2; ++pass)
                for (std::size_t k = 0; k < c; ++k) {
                    double dot = 0;
                    for (std::size_t i = 0; i < rows; ++i) dot += static_cast<double>(p[i * r + c]) * p[i * r + k];
                    const auto d = static_cast<float>(dot);
                    for (std::size_t i = 0; i < rows; ++i) p[i * r + c] -= d * p[i * r + k];
                }
        };
        for (std::size_t c = 0; c < r; ++c) {
            const double before = norm(c);
            project_out(c);
            double after = norm(c);
            if (!(after > 1e-5 * before) || !std::isfinite(after)) {
                const std::uint64_t key = compress::stream_key(seed_, step_ + 1, block_index * r + c);
                for (std::size_t i = 0; i < rows; ++i) p[i * r + c] = normal(key, i);
                project_out(c);
                after = norm(c);
            }
            const float scale = after > 0 && std::isfinite(after) ? static_cast<float>(1.0 / after) : 0.0f;
            for (std::size_t i = 0; i < rows; ++i) p[i * r + c] *= scale;
        }
    }

    // M̂ = P Qᵀ into the buffer, E = M − M̂ (zero on the default layout's padding).
    void reconstruct(const block& b, std::span<float> out) {
        const float* p = flat_.data() + b.flat_at;
        const float* q = q_.data() + b.q_at;
        float* e = error_.data() + b.m_at;
        for (std::size_t i = 0; i < b.rows; ++i) {
            const float* pi = p + i * approximation_rank;
            for (std::size_t k = 0; k < b.cols; ++k) {
                const float* qk = q + k * approximation_rank;
                float v = 0.0f;
                for (std::size_t c = 0; c < approximation_rank; ++c) v += pi[c] * qk[c];
                const std::size_t at = i * b.cols + k;
                if (at < b.size) {
                    out[at] = v;
                    e[at] -= v;
                } else {
                    e[at] = 0.0f;
                }
            }
        }
    }

    std::vector<matrix_shape> layout_;
    options options_;
    std::uint64_t seed_;
    ring_allreduce<float> ring_;
    std::size_t size_ = 0;
    std::uint64_t step_ = 0;
    traffic traffic_;
    std::vector<block> blocks_;
    std::vector<float> error_, flat_, q_;
    std::unique_ptr<dtfm::detail::background_worker> worker_ = std::make_unique<dtfm::detail::background_worker>();
};

}  // namespace dtfm::collective
