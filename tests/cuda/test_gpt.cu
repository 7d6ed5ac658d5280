// cuda::gpt_stage and cuda::adamw on a GPU (label gpu): the checks of gpt_checks.hpp, which the
// host stage passes too (fp64 reference gradients, split against whole, slots, refusals, AdamW
// learning). Skipped, with the reason printed, when no CUDA device is present.
#include <cstdio>
#include <exception>

#include "device_present.hpp"
#include "gpt_checks.hpp"

int main() {
    if (!gpu_test::device_present()) return gpu_test::skipped;
    try {
        const int failures = gpt_checks::run_all();
        std::printf("%s\n", failures == 0 ? "all checks passed" : "some checks FAILED");
        return failures == 0 ? 0 : 1;
    } catch (const std::exception& e) {
        std::printf("FAILED: unexpected exception: %s\n", e.what());
        return 1;
    }
}
