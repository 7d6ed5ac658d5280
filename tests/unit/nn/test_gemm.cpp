// nn::gemm: row-major products with every transpose and a strided column block, against loops.
#include <catch2/catch.hpp>

#include <vector>

#include "dtfm/nn/gemm.hpp"

using dtfm::nn::transpose;

TEST_CASE("gemm: row-major products with transposes and leading dimensions", "[nn][gemm]") {
    // A [2×3], B [3×2]; C = A·B.
    const std::vector<float> a{1, 2, 3, 4, 5, 6}, b{7, 8, 9, 10, 11, 12};
    std::vector<float> c(4, 1.0f);
    dtfm::nn::gemm(transpose::no, transpose::no, 2, 2, 3, 1.0f, a.data(), 3, b.data(), 2, 0.0f, c.data(), 2);
    REQUIRE(c == std::vector<float>{58, 64, 139, 154});
    // Aᵀ·A [3×3] accumulated onto ones (β = 1).
    std::vector<float> d(9, 1.0f);
    dtfm::nn::gemm(transpose::yes, transpose::no, 3, 3, 2, 1.0f, a.data(), 3, a.data(), 3, 1.0f, d.data(), 3);
    REQUIRE(d == std::vector<float>{18, 23, 28, 23, 30, 37, 28, 37, 46});
    // A·Bᵀ with B's first two columns of a 3-wide matrix as a [2×2] view (ldb 3): B' = {{7,8},{10,11}}.
    const std::vector<float> wide{7, 8, 9, 10, 11, 12};
    std::vector<float> e(4);
    const std::vector<float> a2{1, 2, 3, 4};
    dtfm::nn::gemm(transpose::no, transpose::yes, 2, 2, 2, 2.0f, a2.data(), 2, wide.data(), 3, 0.0f, e.data(), 2);
    REQUIRE(e == std::vector<float>{2 * 23, 2 * 32, 2 * 53, 2 * 74});
}
