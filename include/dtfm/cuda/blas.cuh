// cuda::blas: the matrix products of the CUDA GPT stage, row-major like nn::gemm:
// C = α·op(A)·op(B) + β·C, one product or a strided batch of them, on the stage's stream. On
// Thrust's CUDA system through cuBLAS (in FP32: the default math mode, no TF32, so results stay
// within float rounding of the host's); on its CPP or OMP systems, where "device memory" is host
// memory, through nn::gemm (cblas), so the stage's code runs and is tested without a GPU.
//
// Row-major to cuBLAS's column-major: a row-major matrix read column-major is its transpose, so
// C = op(A)·op(B) is computed as Cᵀ = op(B)ᵀ·op(A)ᵀ, the operands swapped, their op flags kept.
#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include "dtfm/cuda/payload.cuh"
#include "dtfm/error.hpp"

#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
#include <cublas_v2.h>

#include <climits>
#else
#include "dtfm/nn/gemm.hpp"
#endif

namespace dtfm::cuda {

enum class transpose : bool { no = false, yes = true };

class blas {
public:
    explicit blas(stream_t stream = nullptr) : stream_(stream) {
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
        check(cublasCreate(&handle_), "cublasCreate");
        if (const cublasStatus_t rc = cublasSetStream(handle_, stream); rc != CUBLAS_STATUS_SUCCESS) {
            cublasDestroy(handle_);
            check(rc, "cublasSetStream");
        }
#endif
    }
    blas(const blas&) = delete;
    blas& operator=(const blas&) = delete;
    blas(blas&& other) noexcept : stream_(other.stream_) {
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
        handle_ = std::exchange(other.handle_, nullptr);
#endif
    }
    blas& operator=(blas&& other) noexcept {
        if (this != &other) {
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
            if (handle_) cublasDestroy(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
#endif
            stream_ = other.stream_;
        }
        return *this;
    }
    ~blas() {
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
        if (handle_) cublasDestroy(handle_);
#endif
    }

    stream_t stream() const noexcept { return stream_; }

    // C[m×n] = α·op(A)[m×k]·op(B)[k×n] + β·C; lda, ldb, ldc are the row strides as stored.
    void gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
              std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
        gemm_batched(ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
    }

    // count products, the i-th on A + i·stride_a, B + i·stride_b, C + i·stride_c.
    void gemm_batched(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
                      std::size_t lda, std::size_t stride_a, const float* b, std::size_t ldb, std::size_t stride_b,
                      float beta, float* c, std::size_t ldc, std::size_t stride_c, std::size_t count) {
        if (m == 0 || n == 0 || count == 0) return;
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
        const cublasOperation_t oa = ta == transpose::yes ? CUBLAS_OP_T : CUBLAS_OP_N;
        const cublasOperation_t ob = tb == transpose::yes ? CUBLAS_OP_T : CUBLAS_OP_N;
        if (count == 1)
            check(cublasSgemm(handle_, ob, oa, dim(n), dim(m), dim(k), &alpha, b, dim(ldb), a, dim(lda), &beta, c, dim(ldc)),
                  "cublasSgemm");
        else
            check(cublasSgemmStridedBatched(handle_, ob, oa, dim(n), dim(m), dim(k), &alpha, b, dim(ldb), stride(stride_b), a,
                                            dim(lda), stride(stride_a), &beta, c, dim(ldc), stride(stride_c), dim(count)),
                  "cublasSgemmStridedBatched");
#else
        const auto na = ta == transpose::yes ? nn::transpose::yes : nn::transpose::no;
        const auto nb = tb == transpose::yes ? nn::transpose::yes : nn::transpose::no;
        for (std::size_t i = 0; i < count; ++i)
            nn::gemm(na, nb, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta, c + i * stride_c, ldc);
#endif
    }

private:
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
    static void check(cublasStatus_t rc, const char* call) {
        if (rc != CUBLAS_STATUS_SUCCESS) throw error(std::string("cuda::blas: ") + call + " failed: status " + std::to_string(static_cast<int>(rc)));
    }
    static int dim(std::size_t n) {
        if (n > static_cast<std::size_t>(INT_MAX)) throw error("cuda::blas: dimension " + std::to_string(n) + " exceeds cuBLAS's int");
        return static_cast<int>(n);
    }
    static long long stride(std::size_t s) { return static_cast<long long>(s); }
    cublasHandle_t handle_ = nullptr;
#endif
    stream_t stream_;
};

}  // namespace dtfm::cuda
