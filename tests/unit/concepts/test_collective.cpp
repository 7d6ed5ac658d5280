// collective<C, T>: an archetype satisfies it over an archetype transport, near misses do not.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstddef>
#include <span>

#include "dtfm/concepts/collective.hpp"

namespace {

struct request {
    std::size_t wait() { return 0; }
    bool test() { return true; }
    bool wait_for(std::chrono::nanoseconds) { return true; }
};
struct some_transport {
    using transport_concept = dtfm::transport_tag;
    using memory_space = dtfm::host_space;
    using request_type = request;
    int rank() const { return 0; }
    int size() const { return 1; }
    request isend(int, dtfm::message_tag, std::span<const std::byte>) { return {}; }
    request irecv(int, dtfm::message_tag, std::span<std::byte>) { return {}; }
    some_transport split(int, int) { return {}; }
};
struct not_a_transport {};

struct operation {
    void wait() {}
    bool test() { return true; }
    bool wait_for(std::chrono::nanoseconds) { return true; }
};

struct good {
    using collective_concept = dtfm::collective_tag;
    using value_type = float;
    template <class T>
    operation allreduce(T&, std::span<float>) {
        return {};
    }
};

struct returns_no_handle {
    using collective_concept = dtfm::collective_tag;
    using value_type = float;
    template <class T>
    void allreduce(T&, std::span<float>) {}
};

struct only_for_doubles {
    using collective_concept = dtfm::collective_tag;
    using value_type = float;
    template <class T>
    operation allreduce(T&, std::span<double>) {
        return {};
    }
};

struct untagged {
    using value_type = float;
    template <class T>
    operation allreduce(T&, std::span<float>) {
        return {};
    }
};

}  // namespace

TEST_CASE("collective: the archetype satisfies it, near misses do not", "[concepts][collective]") {
    STATIC_REQUIRE(dtfm::concepts::transport<some_transport>);
    STATIC_REQUIRE(dtfm::concepts::collective<good, some_transport>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::collective<good, not_a_transport>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::collective<returns_no_handle, some_transport>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::collective<only_for_doubles, some_transport>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::collective<untagged, some_transport>);
}
