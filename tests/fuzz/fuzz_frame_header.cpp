// Fuzzes the frame header parser of checked<T> (messages from untrusted links).
#include "dtfm/transport/checked.hpp"
#include "fuzz_decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const auto h = dtfm::wire::frame_header::read(dtfm::fuzz::bytes(data, size));
        (void)h;
    } catch (const dtfm::wire_error&) {
    }
    return 0;
}
