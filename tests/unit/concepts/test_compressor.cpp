// compressor and compressor_for: an archetype satisfies them, each near miss does not.
#include <catch2/catch.hpp>

#include <cstddef>
#include <span>

#include "dtfm/concepts/compressor.hpp"

namespace {

template <class Space = dtfm::host_space>
struct basic_compressor {
    using compressor_concept = dtfm::compressor_tag;
    using value_type = float;
    using memory_space = Space;
    std::size_t max_payload_bytes(std::size_t n) const { return n * sizeof(float); }
    std::size_t encode(std::span<const float>, std::span<std::byte>) { return 0; }
    void decode(std::span<const std::byte>, std::span<float>) {}
};
using good = basic_compressor<>;
using on_device = basic_compressor<dtfm::cuda_space>;

struct no_decode {
    using compressor_concept = dtfm::compressor_tag;
    using value_type = float;
    using memory_space = dtfm::host_space;
    std::size_t max_payload_bytes(std::size_t n) const { return n; }
    std::size_t encode(std::span<const float>, std::span<std::byte>) { return 0; }
};

struct encode_returns_nothing : good {
    void encode(std::span<const float>, std::span<std::byte>) {}
};

struct bound_not_const : good {
    std::size_t max_payload_bytes(std::size_t n) { return n; }
    std::size_t max_payload_bytes(std::size_t n) const = delete;
};

struct decode_writes_other_type : good {
    void decode(std::span<const std::byte>, std::span<double>) {}
    void decode(std::span<const std::byte>, std::span<float>) = delete;
};

struct untagged {
    using value_type = float;
    using memory_space = dtfm::host_space;
    std::size_t max_payload_bytes(std::size_t n) const { return n; }
    std::size_t encode(std::span<const float>, std::span<std::byte>) { return 0; }
    void decode(std::span<const std::byte>, std::span<float>) {}
};

}  // namespace

TEST_CASE("compressor: the archetype satisfies it, near misses do not", "[concepts][compressor]") {
    STATIC_REQUIRE(dtfm::concepts::compressor<good>);
    STATIC_REQUIRE(dtfm::concepts::compressor<on_device>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::compressor<no_decode>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::compressor<encode_returns_nothing>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::compressor<bound_not_const>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::compressor<decode_writes_other_type>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::compressor<untagged>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::compressor<int>);
}

TEST_CASE("compressor_for: a CUDA compressor does not fit host buffers", "[concepts][compressor]") {
    STATIC_REQUIRE(dtfm::concepts::compressor_for<good, dtfm::host_space>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::compressor_for<good, dtfm::cuda_space>);
    STATIC_REQUIRE(dtfm::concepts::compressor_for<on_device, dtfm::cuda_space>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::compressor_for<on_device, dtfm::host_space>);
}
