// collective::options: what every collective is configured with (its message ids, its timeout,
// its pipelining slice), the traffic the compressing ones report, and the partition of a buffer
// into per-rank segments they share.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "dtfm/concepts/transport.hpp"
#include "dtfm/error.hpp"
#include "dtfm/transport/wait.hpp"

namespace dtfm::collective {

// Each collective instance sends on channel::data_parallel with ids [tag, tag + ids_per_collective):
// two instances that may run at the same time on one transport (one per gradient bucket) need
// tags at least ids_per_collective apart.
inline constexpr std::uint32_t ids_per_collective = 8;

struct options {
    std::uint32_t tag = 0;
    // Every wait on a peer is bounded: a dead or silent peer raises dtfm::timeout_error.
    std::chrono::nanoseconds timeout = std::chrono::minutes(5);
    // Large segments move in slices of this many bytes, so receiving one slice overlaps reducing
    // and forwarding the previous one.
    std::size_t slice_bytes = std::size_t{1} << 20;
};

// Bytes a compressing collective put on the wire, and what the same values weigh uncompressed.
struct traffic {
    std::uint64_t payload_bytes = 0;
    std::uint64_t value_bytes = 0;
    double ratio() const { return payload_bytes == 0 ? 1.0 : static_cast<double>(value_bytes) / static_cast<double>(payload_bytes); }
};

// A collective can take average or sum as its reduction; average needs floating point.
struct sum {};
struct average {};

}  // namespace dtfm::collective

namespace dtfm::detail {

inline void check_options(const collective::options& o, const char* who) {
    if (o.tag > message_tag::max_id - collective::ids_per_collective)
        throw config_error(std::string(who) + ": tag " + std::to_string(o.tag) + " leaves no room for " +
                           std::to_string(collective::ids_per_collective) + " message ids below 2^24");
    if (o.timeout <= std::chrono::nanoseconds::zero())
        throw config_error(std::string(who) + ": the timeout must be positive");
    if (o.slice_bytes == 0) throw config_error(std::string(who) + ": slice_bytes must be positive");
}

inline message_tag collective_tag_at(const collective::options& o, std::uint32_t offset) {
    return message_tag{channel::data_parallel, o.tag + offset};
}

// Segment i of n elements split into `parts` nearly equal, contiguous pieces (sizes differ by at
// most one; any n, any parts ≥ 1).
struct segment {
    std::size_t begin = 0;
    std::size_t size = 0;
};

inline segment segment_of(std::size_t n, std::size_t parts, std::size_t i) {
    const std::size_t base = n / parts, extra = n % parts;
    const std::size_t begin = i * base + (i < extra ? i : extra);
    return {begin, base + (i < extra ? 1 : 0)};
}

template <class Request>
std::size_t await(Request& r, const collective::options& o, const char* what) {
    return transport::wait_within(r, o.timeout, what);
}

}  // namespace dtfm::detail
