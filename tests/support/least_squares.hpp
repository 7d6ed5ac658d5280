// A sparse least-squares problem split over ranks, for convergence tests of data-parallel
// training: rows with a few Gaussian entries, b = A·x* + noise, loss = ‖Ax − b‖² / 2m. Each rank
// holds an equal shard, so the average of the shards' gradients is the full gradient.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace dtfm::test {

class least_squares_shard {
public:
    // Shard `rank` of `ranks`, each of `rows` rows over `features` columns with `per_row` entries.
    least_squares_shard(std::size_t features, std::size_t rows, std::size_t per_row, int rank, double noise,
                        std::uint64_t seed = 7)
        : features_(features), rows_(rows), per_row_(per_row), cols_(rows * per_row), vals_(rows * per_row), b_(rows) {
        std::mt19937_64 truth_rng(seed);
        std::normal_distribution<double> normal(0.0, 1.0);
        std::vector<double> truth(features);
        for (auto& v : truth) v = normal(truth_rng);
        std::mt19937_64 rng(seed * 1000003 + static_cast<std::uint64_t>(rank) + 1);
        std::uniform_int_distribution<std::uint32_t> column(0, static_cast<std::uint32_t>(features - 1));
        const double scale = std::sqrt(static_cast<double>(features) / static_cast<double>(per_row));
        for (std::size_t r = 0; r < rows; ++r) {
            double dot = 0;
            for (std::size_t k = 0; k < per_row; ++k) {
                const std::uint32_t c = column(rng);
                const double v = normal(rng) * scale;
                cols_[r * per_row + k] = c;
                vals_[r * per_row + k] = static_cast<float>(v);
                dot += v * truth[c];
            }
            b_[r] = static_cast<float>(dot + noise * normal(rng));
        }
    }

    std::size_t features() const { return features_; }

    // The shard's loss at x, and its gradient into g.
    double loss_and_gradient(std::span<const float> x, std::span<float> g) {
        for (auto& v : g) v = 0.0f;
        double loss = 0;
        const float inv = 1.0f / static_cast<float>(rows_);
        for (std::size_t r = 0; r < rows_; ++r) {
            float residual = -b_[r];
            for (std::size_t k = 0; k < per_row_; ++k) residual += vals_[r * per_row_ + k] * x[cols_[r * per_row_ + k]];
            loss += 0.5 * static_cast<double>(residual) * residual;
            for (std::size_t k = 0; k < per_row_; ++k) g[cols_[r * per_row_ + k]] += inv * residual * vals_[r * per_row_ + k];
        }
        return loss / static_cast<double>(rows_);
    }

private:
    std::size_t features_, rows_, per_row_;
    std::vector<std::uint32_t> cols_;
    std::vector<float> vals_;
    std::vector<float> b_;
};

}  // namespace dtfm::test
