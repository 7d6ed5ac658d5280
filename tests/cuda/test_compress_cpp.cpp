// The CUDA compressors' algorithms on Thrust's CPP device system, built with g++ and run without a
// GPU: the same functors and Thrust calls as on a device, "device memory" being host memory, byte
// for byte against the host compressors (compress_checks.hpp).
#include <cstdio>
#include <exception>

#include "compress_checks.hpp"

int main() {
    try {
        return checks::run_all();
    } catch (const std::exception& e) {
        std::printf("FAILED: unexpected exception: %s\n", e.what());
        return 1;
    }
}
