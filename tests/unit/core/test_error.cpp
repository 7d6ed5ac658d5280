#include <catch2/catch.hpp>

#include <string_view>
#include <type_traits>

#include "dtfm/error.hpp"

TEST_CASE("every dtfm error is a dtfm::error and a std::runtime_error", "[error]") {
    STATIC_REQUIRE(std::is_base_of_v<std::runtime_error, dtfm::error>);
    STATIC_REQUIRE(std::is_base_of_v<dtfm::error, dtfm::wire_error>);
    STATIC_REQUIRE(std::is_base_of_v<dtfm::error, dtfm::transport_error>);
    STATIC_REQUIRE(std::is_base_of_v<dtfm::transport_error, dtfm::timeout_error>);
    STATIC_REQUIRE(std::is_base_of_v<dtfm::error, dtfm::config_error>);
    STATIC_REQUIRE_FALSE(std::is_base_of_v<dtfm::transport_error, dtfm::wire_error>);
    STATIC_REQUIRE_FALSE(std::is_base_of_v<dtfm::transport_error, dtfm::config_error>);
}

TEST_CASE("a timeout can be caught as a transport failure", "[error]") {
    bool caught = false;
    try {
        throw dtfm::timeout_error("receive from rank 3 timed out after 50 ms");
    } catch (const dtfm::transport_error& e) {
        caught = true;
        REQUIRE(std::string_view(e.what()) == "receive from rank 3 timed out after 50 ms");
    }
    REQUIRE(caught);
}

TEST_CASE("a wire_error says why the bytes did not decode", "[error]") {
    const dtfm::wire_error e(dtfm::wire_error::reason::checksum_mismatch, "payload checksum mismatch");
    REQUIRE(e.why() == dtfm::wire_error::reason::checksum_mismatch);
    REQUIRE(std::string_view(dtfm::to_string(e.why())) == "checksum mismatch");
    REQUIRE(std::string_view(e.what()) == "payload checksum mismatch");
    using r = dtfm::wire_error::reason;
    for (auto why : {r::truncated, r::bad_magic, r::bad_version, r::bad_kind, r::bad_length, r::checksum_mismatch,
                     r::bad_value}) {
        REQUIRE(std::string_view(dtfm::to_string(why)) != "unknown");
    }
}
