// completion_handle: what an asynchronous operation returns (a send, a receive, an all-reduce).
// The caller computes while it runs and then waits, tests, or waits with a deadline.
#pragma once

#include <chrono>
#include <concepts>

namespace dtfm::concepts {

// wait() blocks until done and rethrows the operation's failure; test() never blocks;
// wait_for(d) returns false when d passed first (the operation then goes on; callers that give
// up raise dtfm::timeout_error).
template <class H>
concept completion_handle = std::movable<H> && requires(H& h, std::chrono::nanoseconds d) {
    h.wait();
    { h.test() } -> std::same_as<bool>;
    { h.wait_for(d) } -> std::same_as<bool>;
};

}  // namespace dtfm::concepts
