// checked<T>: frame headers are validated field by field; a frame whose bytes were changed, whose
// length disagrees with its header, or that is not a frame at all raises dtfm::wire_error.
#include <catch2/catch.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "dtfm/transport/checked.hpp"
#include "dtfm/transport/inproc.hpp"
#include "../../support/transport_suite.hpp"

using namespace dtfm::transport;
using dtfm::wire_error;
using dtfm::wire::frame_header;
using reason = dtfm::wire_error::reason;

namespace {

std::array<std::byte, frame_header::size> good_header(std::uint64_t n, std::uint32_t crc) {
    std::array<std::byte, frame_header::size> h{};
    frame_header{n, crc}.write(h);
    return h;
}

reason why(std::span<const std::byte> bytes) {
    try {
        (void)frame_header::read(bytes);
    } catch (const wire_error& e) {
        return e.why();
    }
    FAIL("frame_header::read accepted malformed bytes");
    return reason::bad_value;
}

}  // namespace

TEST_CASE("frame_header: round trip and every malformed field", "[checked]") {
    auto h = good_header(12345, 0xABCDEF01u);
    const auto back = frame_header::read(h);
    REQUIRE(back.payload_bytes == 12345);
    REQUIRE(back.payload_crc == 0xABCDEF01u);

    REQUIRE(why(std::span<const std::byte>(h).first(10)) == reason::truncated);
    std::vector<std::byte> longer(h.begin(), h.end());
    longer.push_back(std::byte{0});
    REQUIRE(why(longer) == reason::truncated);

    auto bad_magic = h;
    bad_magic[0] ^= std::byte{1};
    REQUIRE(why(bad_magic) == reason::bad_magic);

    // Fields changed after the header's CRC was computed: caught by the header checksum.
    for (std::size_t at : {4u, 5u, 8u, 16u, 20u}) {
        auto changed = h;
        changed[at] ^= std::byte{0x10};
        REQUIRE(why(changed) == reason::checksum_mismatch);
    }

    // A well-formed header of another version or kind (re-checksummed) is refused by field.
    auto other_version = h;
    other_version[4] = std::byte{2};
    dtfm::wire::store_le<std::uint32_t>(other_version.data() + 20,
                                        dtfm::wire::crc32c(std::span<const std::byte>(other_version).first(20)));
    REQUIRE(why(other_version) == reason::bad_version);
    auto other_kind = h;
    other_kind[5] = std::byte{9};
    dtfm::wire::store_le<std::uint32_t>(other_kind.data() + 20,
                                        dtfm::wire::crc32c(std::span<const std::byte>(other_kind).first(20)));
    REQUIRE(why(other_kind) == reason::bad_kind);
}

TEST_CASE("checked: hostile frames sent by a raw peer are refused", "[checked]") {
    // Rank 0 speaks the raw inner transport; rank 1 receives through checked<>.
    run_inproc(2, [](inproc& world) {
        const dtfm::message_tag tag{dtfm::channel::user, 1};
        std::vector<std::byte> payload(100, std::byte{7});
        const auto crc = dtfm::wire::crc32c(payload);
        if (world.rank() == 0) {
            // 1: a header that promises 99 bytes for a 100-byte payload.
            auto h1 = good_header(99, crc);
            world.isend(1, tag, h1).wait();
            world.isend(1, tag, payload).wait();
            // 2: a right header, then a payload with one byte changed.
            auto h2 = good_header(100, crc);
            auto changed = payload;
            changed[50] = std::byte{8};
            world.isend(1, tag, h2).wait();
            world.isend(1, tag, changed).wait();
            // 3: no header at all: two payload-sized messages.
            world.isend(1, tag, std::span<const std::byte>(payload).first(24)).wait();
            world.isend(1, tag, payload).wait();
            // 4: a good frame still gets through afterwards.
            auto h4 = good_header(100, crc);
            world.isend(1, tag, h4).wait();
            world.isend(1, tag, payload).wait();
        } else {
            checked<inproc> c(world);
            std::vector<std::byte> in(100);
            auto expect = [&](reason r) {
                auto req = c.irecv(0, tag, in);
                try {
                    req.wait();
                } catch (const wire_error& e) {
                    DTFM_RANK_REQUIRE(e.why() == r);
                    return;
                }
                DTFM_RANK_REQUIRE(!"a hostile frame was accepted");
            };
            expect(reason::bad_length);
            expect(reason::checksum_mismatch);
            expect(reason::bad_magic);
            auto ok = c.irecv(0, tag, in);
            DTFM_RANK_REQUIRE(ok.wait() == 100);
            DTFM_RANK_REQUIRE(in == payload);
        }
    });
}
