// Fuzzes the pipeline's micro-batch messages (payloads back to back, from the previous or next
// stage), read with the compressors AC-SGD uses.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dtfm/compress/delta.hpp"
#include "dtfm/compress/quantize.hpp"
#include "dtfm/strategy/pipeline_parallel.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto message = std::as_bytes(std::span(data, size));
    std::vector<float> values(48);
    const std::vector<std::uint64_t> ids{1, 2, 3};
    try {
        dtfm::compress::quantize<8> q;
        dtfm::detail::pipeline_unframe(q, message, std::span<float>(values), {}, 3);
    } catch (const dtfm::wire_error&) {
    }
    try {
        dtfm::compress::delta<dtfm::compress::quantize<4>> d(1 << 16);
        dtfm::detail::pipeline_unframe(d, message, std::span<float>(values), ids);
    } catch (const dtfm::wire_error&) {
    }
    return 0;
}
