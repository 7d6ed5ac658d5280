// The few math functions the layers' shared row kernels call, for host and device alike: the
// standard library's on the host (so host results stay what they were), CUDA's on a device.
#pragma once

#include <cmath>

#include "dtfm/config.hpp"

namespace dtfm::nn::detail {

DTFM_HOST_DEVICE float exp(float x) {
#if defined(__CUDA_ARCH__)
    return ::expf(x);
#else
    return std::exp(x);
#endif
}

DTFM_HOST_DEVICE double log(double x) {
#if defined(__CUDA_ARCH__)
    return ::log(x);
#else
    return std::log(x);
#endif
}

DTFM_HOST_DEVICE double sqrt(double x) {
#if defined(__CUDA_ARCH__)
    return ::sqrt(x);
#else
    return std::sqrt(x);
#endif
}

}  // namespace dtfm::nn::detail
