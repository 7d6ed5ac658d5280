// Fuzzes the topology loader (JSON from a file a user or a peer supplies).
#include <string_view>

#include "dtfm/plan/topology.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const auto t = dtfm::plan::parse_topology(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
        (void)t;
    } catch (const dtfm::config_error&) {
    }
    return 0;
}
