// CUDA runtime failures as dtfm errors: check_cuda turns a cudaError_t into a dtfm::cuda_error
// naming the call and CUDA's own message. Needs nvcc (the dtfm::cuda component).
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "dtfm/error.hpp"

namespace dtfm {

// A CUDA runtime call failed (no device, out of memory, a kernel fault).
class cuda_error : public error {
public:
    cuda_error(cudaError_t code, const std::string& what) : error(what), code_(code) {}
    cudaError_t code() const noexcept { return code_; }

private:
    cudaError_t code_;
};

}  // namespace dtfm

namespace dtfm::detail {

inline void check_cuda(cudaError_t rc, const char* call) {
    if (rc != cudaSuccess) {
        throw cuda_error(rc, std::string(call) + " failed: " + cudaGetErrorName(rc) + ": " + cudaGetErrorString(rc));
    }
}

}  // namespace dtfm::detail
