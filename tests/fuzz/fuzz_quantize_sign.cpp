// Fuzzes the quantize decoders (bit widths, scales, roundings, block sizes) and sign.
#include "dtfm/compress/quantize.hpp"
#include "dtfm/compress/sign.hpp"
#include "fuzz_decoder.hpp"

using dtfm::fuzz::decode_with;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace dtfm::compress;
    switch (dtfm::fuzz::choose(data, size, 8)) {
    case 0: decode_with<quantize<8>>(data, size); break;
    case 1: decode_with<quantize<4>>(data, size); break;
    case 2: decode_with<quantize<3, minmax, stochastic, 64>>(data, size); break;
    case 3: decode_with<quantize<2, minmax>>(data, size); break;
    case 4: decode_with<quantize<1, absmax, stochastic>>(data, size); break;
    case 5: decode_with<quantize<4, absmax, nearest, 8>>(data, size); break;
    case 6: decode_with<sign<>>(data, size); break;
    default: decode_with<sign<64>>(data, size); break;
    }
    return 0;
}
