// Fuzzes the delta<> decoder (AC-SGD activations): the receiver holds sample 1 already, so the
// fuzzer reaches both the full and the delta paths. A sample id of 0 is refused as unset.
#include <vector>

#include "dtfm/compress/cast.hpp"
#include "dtfm/compress/delta.hpp"
#include "fuzz_decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace dtfm::compress;
    constexpr std::size_t n = 64;
    delta<cast<fp16>> sender(16 * n * sizeof(float)), receiver(16 * n * sizeof(float));
    std::vector<float> activation(n, 0.5f), out(n);
    std::vector<std::byte> first(sender.max_payload_bytes(n));
    sender.set_sample(1);
    const auto bytes = sender.encode(activation, first);
    receiver.set_sample(1);
    receiver.decode(std::span(first).first(bytes), out);

    // The first byte picks the sample the receiver expects: 1 is held, 0 and 2 are not.
    receiver.set_sample(dtfm::fuzz::choose(data, size, 3));
    try {
        receiver.decode(dtfm::fuzz::bytes(data, size), out);
    } catch (const dtfm::wire_error&) {
    }
    return 0;
}
