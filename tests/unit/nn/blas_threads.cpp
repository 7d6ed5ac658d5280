// The nn tests run OpenBLAS on one thread: CTest runs two test programs at once on this 2-core
// machine, and a thread pool per GEMM would oversubscribe it.
#include "dtfm/nn/gemm.hpp"

namespace {
[[maybe_unused]] const bool single_threaded = dtfm::nn::set_blas_threads(1);
}  // namespace
