// What every GPU test does first: when no CUDA device is present, print why and return the skip
// code (77, DTFM_SKIP_RETURN_CODE in CMake: CTest shows the test as Skipped); else name the device.
#pragma once

#include <cuda_runtime.h>

#include <cstdio>

namespace gpu_test {

inline constexpr int skipped = 77;

// True when a device is present (and printed); false after printing why the test is skipped.
inline bool device_present() {
    int devices = 0;
    const cudaError_t probe = cudaGetDeviceCount(&devices);
    if (probe != cudaSuccess || devices == 0) {
        std::printf("SKIPPED: no CUDA device (%s)\n", probe != cudaSuccess ? cudaGetErrorString(probe) : "0 devices");
        return false;
    }
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, 0);
    std::printf("device: %s\n", prop.name);
    return true;
}

}  // namespace gpu_test
