// The CUDA compressors on a GPU, byte for byte against the host compressors (compress_checks.hpp).
// Exits 77 (skipped) without a device.
#include <cstdio>

#include "compress_checks.hpp"
#include "device_present.hpp"

int main() {
    if (!gpu_test::device_present()) return gpu_test::skipped;
    try {
        return checks::run_all();
    } catch (const std::exception& e) {
        std::printf("FAILED: unexpected exception: %s\n", e.what());
        return 1;
    }
}
