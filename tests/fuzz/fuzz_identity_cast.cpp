// Fuzzes the identity and cast<fp16 / bf16> decoders (first byte picks one).
#include "dtfm/compress/cast.hpp"
#include "dtfm/compress/identity.hpp"
#include "fuzz_decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    switch (dtfm::fuzz::choose(data, size, 3)) {
    case 0: {
        dtfm::compress::identity c;
        dtfm::fuzz::decode(c, dtfm::fuzz::bytes(data, size));
        break;
    }
    case 1: {
        dtfm::compress::cast<dtfm::compress::fp16> c;
        dtfm::fuzz::decode(c, dtfm::fuzz::bytes(data, size));
        break;
    }
    default: {
        dtfm::compress::cast<dtfm::compress::bf16> c;
        dtfm::fuzz::decode(c, dtfm::fuzz::bytes(data, size));
        break;
    }
    }
    return 0;
}
