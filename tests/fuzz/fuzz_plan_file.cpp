// Fuzzes the plan-file reader (JSON a planner or a user wrote).
#include <cstddef>
#include <cstdint>
#include <string>

#include "dtfm/plan/plan_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const auto p = dtfm::plan::parse_placement(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
        (void)p.ranks();
    } catch (const dtfm::config_error&) {
    }
    return 0;
}
