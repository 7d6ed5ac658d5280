// Fuzzes the sparse decoders: topk (exact and approximate payloads), randomk and cocktail, through
// decode and decode_scatter.
#include "dtfm/compress/cocktail.hpp"
#include "dtfm/compress/randomk.hpp"
#include "dtfm/compress/topk.hpp"
#include "fuzz_decoder.hpp"

using dtfm::fuzz::decode_with;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace dtfm::compress;
    switch (dtfm::fuzz::choose(data, size, 6)) {
    case 0: decode_with<topk<>>(data, size); break;
    case 1: decode_with<topk<std::ratio<1, 10>>>(data, size); break;
    case 2: decode_with<topk_approx<>>(data, size); break;
    case 3: decode_with<randomk<>>(data, size); break;
    case 4: decode_with<randomk<std::ratio<1, 10>, false>>(data, size); break;
    default: decode_with<cocktail<>>(data, size); break;
    }
    return 0;
}
