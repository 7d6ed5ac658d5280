// Waiting with a deadline: wait_within turns a completion handle that does not finish in time
// into a dtfm::timeout_error, so a dead peer costs a bounded wait and a clear error, not a hang.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "dtfm/concepts/completion_handle.hpp"
#include "dtfm/error.hpp"

namespace dtfm::transport {

// Waits for `h` at most `timeout`; returns what h.wait() returns, or throws timeout_error naming
// `what`. The handle stays pending after a timeout; destroying it cancels a transport request.
template <concepts::completion_handle H>
decltype(auto) wait_within(H& h, std::chrono::nanoseconds timeout, std::string_view what = "operation") {
    if (!h.wait_for(timeout)) {
        const auto ms = std::chrono::duration<double, std::milli>(timeout).count();
        throw timeout_error(std::string(what) + " timed out after " + std::to_string(ms) + " ms");
    }
    return h.wait();
}

}  // namespace dtfm::transport
