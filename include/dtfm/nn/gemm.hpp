// nn::gemm: the one matrix product of the host GPT, row-major C = α·op(A)·op(B) + β·C through
// cblas_sgemm, and the BLAS thread count. Needs the dtfm::blas component (cblas.h and a CBLAS).
//
// OpenBLAS starts one thread per core by default. dtfm runs ranks as threads (transport::inproc)
// and several ranks per machine, so each GEMM thread-pool would oversubscribe the cores: programs
// that run several ranks in one process should call set_blas_threads(1) (or set
// OPENBLAS_NUM_THREADS=1) before the first GEMM. dtfm's tests do.
#pragma once

#include <cblas.h>

#include <climits>
#include <cstddef>
#include <string>

#include "dtfm/error.hpp"

namespace dtfm::nn {

enum class transpose : bool { no = false, yes = true };

namespace detail {

inline int blas_int(std::size_t n) {
    if (n > static_cast<std::size_t>(INT_MAX)) throw error("nn::gemm: dimension " + std::to_string(n) + " exceeds the BLAS int");
    return static_cast<int>(n);
}

}  // namespace detail

// C[m×n] = alpha·op(A)[m×k]·op(B)[k×n] + beta·C, all row-major with leading dimensions lda, ldb,
// ldc (the row stride of each matrix as stored, so a column block of a wider matrix is a view).
inline void gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
                 std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
    if (m == 0 || n == 0) return;
    cblas_sgemm(CblasRowMajor, ta == transpose::yes ? CblasTrans : CblasNoTrans,
                tb == transpose::yes ? CblasTrans : CblasNoTrans, detail::blas_int(m), detail::blas_int(n),
                detail::blas_int(k), alpha, a, detail::blas_int(lda), b, detail::blas_int(ldb), beta, c,
                detail::blas_int(ldc));
}

// Sets how many threads the BLAS uses for one GEMM (OpenBLAS only; other CBLAS ignore it) and
// returns true when it could.
inline bool set_blas_threads(int threads) {
#if defined(OPENBLAS_VERSION)
    openblas_set_num_threads(threads);
    return true;
#else
    (void)threads;
    return false;
#endif
}

}  // namespace dtfm::nn
