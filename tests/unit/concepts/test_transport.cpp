// transport and completion_handle: an archetype satisfies them, each near miss does not.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstddef>
#include <span>

#include "dtfm/concepts/transport.hpp"

namespace {

struct request {
    std::size_t wait() { return 0; }
    bool test() { return true; }
    bool wait_for(std::chrono::nanoseconds) { return true; }
};
struct request_without_timeout {
    std::size_t wait() { return 0; }
    bool test() { return true; }
};
struct request_without_size {
    void wait() {}
    bool test() { return true; }
    bool wait_for(std::chrono::nanoseconds) { return true; }
};

// Everything a transport needs, split() returning the most derived type (CRTP), so each near
// miss below breaks exactly the one requirement it names.
template <class Self, class Tag = dtfm::transport_tag, class Space = dtfm::host_space, class Request = request>
struct transport_base {
    using transport_concept = Tag;
    using memory_space = Space;
    using request_type = Request;
    int rank() const { return 0; }
    int size() const { return 1; }
    Request isend(int, dtfm::message_tag, std::span<const std::byte>) { return {}; }
    Request irecv(int, dtfm::message_tag, std::span<std::byte>) { return {}; }
    Self split(int, int) { return {}; }
};

struct good : transport_base<good> {};
struct other_tag {};
struct wrong_tag : transport_base<wrong_tag, other_tag> {};
struct not_a_space : transport_base<not_a_space, dtfm::transport_tag, int> {};
struct no_timeout : transport_base<no_timeout, dtfm::transport_tag, dtfm::host_space, request_without_timeout> {};
struct no_size : transport_base<no_size, dtfm::transport_tag, dtfm::host_space, request_without_size> {};

struct send_takes_mutable_bytes : transport_base<send_takes_mutable_bytes> {
    request isend(int, dtfm::message_tag, std::span<std::byte>) { return {}; }
};

struct split_returns_base : transport_base<good> {};

struct rank_not_const : transport_base<rank_not_const> {
    int rank() { return 0; }
    int rank() const = delete;
};

struct untagged {
    using memory_space = dtfm::host_space;
    using request_type = request;
    int rank() const { return 0; }
    int size() const { return 1; }
    request isend(int, dtfm::message_tag, std::span<const std::byte>) { return {}; }
    request irecv(int, dtfm::message_tag, std::span<std::byte>) { return {}; }
    untagged split(int, int) { return {}; }
};

struct no_split {
    using transport_concept = dtfm::transport_tag;
    using memory_space = dtfm::host_space;
    using request_type = request;
    int rank() const { return 0; }
    int size() const { return 1; }
    request isend(int, dtfm::message_tag, std::span<const std::byte>) { return {}; }
    request irecv(int, dtfm::message_tag, std::span<std::byte>) { return {}; }
};

}  // namespace

TEST_CASE("transport: the archetype satisfies it, near misses do not", "[concepts][transport]") {
    STATIC_REQUIRE(dtfm::concepts::completion_handle<request>);
    STATIC_REQUIRE(dtfm::concepts::transport_request<request>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::completion_handle<request_without_timeout>);
    STATIC_REQUIRE(dtfm::concepts::completion_handle<request_without_size>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::transport_request<request_without_size>);

    STATIC_REQUIRE(dtfm::concepts::transport<good>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::transport<wrong_tag>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::transport<not_a_space>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::transport<no_timeout>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::transport<no_size>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::transport<untagged>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::transport<send_takes_mutable_bytes>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::transport<no_split>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::transport<split_returns_base>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::transport<rank_not_const>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::transport<int>);
}

TEST_CASE("message tags compare by channel and id", "[concepts][transport]") {
    constexpr dtfm::message_tag a{dtfm::channel::pipeline, 5};
    constexpr dtfm::message_tag b{dtfm::channel::data_parallel, 5};
    STATIC_REQUIRE(a == dtfm::message_tag{dtfm::channel::pipeline, 5});
    STATIC_REQUIRE_FALSE(a == b);
    STATIC_REQUIRE(dtfm::message_tag::max_id == 0xFFFFFFu);
}
