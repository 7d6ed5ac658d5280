// The CUDA compressors on a GPU, byte for byte against the host compressors (compress_checks.hpp).
// Exits 77 (skipped) without a device.
#include <cstdio>

#include "compress_checks.hpp"

int main() {
    int devices = 0;
    const cudaError_t probe = cudaGetDeviceCount(&devices);
    if (probe != cudaSuccess || devices == 0) {
        std::printf("SKIPPED: no CUDA device (%s)\n", probe != cudaSuccess ? cudaGetErrorString(probe) : "0 devices");
        return 77;
    }
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, 0);
    std::printf("device: %s\n", prop.name);
    try {
        return checks::run_all();
    } catch (const std::exception& e) {
        std::printf("FAILED: unexpected exception: %s\n", e.what());
        return 1;
    }
}
