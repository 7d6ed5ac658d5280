// transport: moves bytes between the ranks of a group, asynchronously, on separate channels, and
// splits a group into sub-groups (the pipeline and data-parallel groups of a stages × replicas mesh).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

#include "dtfm/concepts/completion_handle.hpp"
#include "dtfm/spaces.hpp"

namespace dtfm {

struct transport_tag {};

// Channels keep kinds of traffic apart: a pipeline activation can never match a gradient receive.
enum class channel : std::uint8_t { control = 0, data_parallel = 1, pipeline = 2, user = 3 };

// A message is matched on (source, channel, id); messages with the same key arrive in send order.
struct message_tag {
    channel lane = channel::user;
    std::uint32_t id = 0;  // below 2^24, so every transport can encode (lane, id) in one integer

    static constexpr std::uint32_t max_id = (1u << 24) - 1;
    friend constexpr bool operator==(const message_tag&, const message_tag&) = default;
};

}  // namespace dtfm

namespace dtfm::concepts {

// A request of a transport: a completion handle whose wait() returns the bytes moved (for a
// receive, the size of the message, which may be smaller than the buffer).
template <class R>
concept transport_request = completion_handle<R> && requires(R& r) {
    { r.wait() } -> std::same_as<std::size_t>;
};

// T opts in with `using transport_concept = dtfm::transport_tag;` and names the memory space its
// buffers live in. isend/irecv take spans that must stay alive until the request completes;
// split(color, key) is collective over the group and returns the sub-group of equal colour,
// ranked by key (as MPI_Comm_split).
template <class T>
concept transport = std::movable<T> && std::same_as<typename T::transport_concept, transport_tag> &&
                    memory_space<typename T::memory_space> && transport_request<typename T::request_type> &&
                    requires(T& t, const T& ct, int peer, message_tag tag, std::span<const std::byte> out,
                             std::span<std::byte> in, int color, int key) {
                        { ct.rank() } -> std::same_as<int>;
                        { ct.size() } -> std::same_as<int>;
                        { t.isend(peer, tag, out) } -> std::same_as<typename T::request_type>;
                        { t.irecv(peer, tag, in) } -> std::same_as<typename T::request_type>;
                        { t.split(color, key) } -> std::same_as<T>;
                    };

// A transport whose requests, once destroyed, never touch their buffers again (the destructor
// cancels or finishes the operation, as inproc and mpi do) says so with
// `static constexpr bool drop_releases_buffer = true;`. Wrappers that may still post or read a
// buffer after their request is gone (throttled's scheduled sends) do not, and their buffers
// must then outlive the transport's use of them: transport::staged keeps such staging blocks.
template <class T>
inline constexpr bool drop_releases_buffer = requires {
    requires T::drop_releases_buffer;
};

}  // namespace dtfm::concepts
