// Fuzzes the checkpoint decoder (a file that may be truncated, damaged or hostile).
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dtfm/train/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const auto c = dtfm::train::checkpoint::decode(std::as_bytes(std::span(data, size)));
        std::vector<float> values;
        if (c.contains("parameters")) c.get("parameters", values);
    } catch (const dtfm::wire_error&) {
    }
    return 0;
}
