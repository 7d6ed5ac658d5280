// What every GPU program does first: when no GPU is installed, print why and return the skip code
// (77, DTFM_SKIP_RETURN_CODE in CMake: CTest shows the test as Skipped); else name the device. A
// GPU that is installed but that CUDA cannot use (a driver older than the runtime, say) is a
// failure, not a skip, so a run on a GPU machine cannot pass without running anything.
#pragma once

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace gpu_test {

inline constexpr int skipped = 77;

// The NVIDIA driver's device node or its /proc entry exists, whether or not CUDA can use it.
inline bool gpu_installed() {
    std::error_code ec;
    return std::filesystem::exists("/dev/nvidia0", ec) || std::filesystem::exists("/proc/driver/nvidia/version", ec);
}

// True when a device is present (and printed); false after printing why the test is skipped. Exits
// with status 1 when a GPU is installed but unusable.
inline bool device_present() {
    int devices = 0;
    const cudaError_t probe = cudaGetDeviceCount(&devices);
    if (probe != cudaSuccess || devices == 0) {
        const char* why = probe != cudaSuccess ? cudaGetErrorString(probe) : "0 devices";
        if (gpu_installed()) {
            int driver = 0, runtime = 0;
            cudaDriverGetVersion(&driver);
            cudaRuntimeGetVersion(&runtime);
            std::printf("FAILED: a GPU is installed but CUDA cannot use it (%s; driver supports CUDA %d, runtime %d)\n", why,
                        driver, runtime);
            std::exit(1);
        }
        std::printf("SKIPPED: no CUDA device (%s)\n", why);
        return false;
    }
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, 0);
    std::printf("device: %s\n", prop.name);
    return true;
}

}  // namespace gpu_test
