// The deadline of a timed wait, `now + d`, saturated: wait_for(std::chrono::nanoseconds::max())
// means "no deadline", but now() + max overflows to a time in the past, and so does
// std::condition_variable::wait_for, which adds the same way. Every wait_for computes its deadline
// here and waits with wait_until.
#pragma once

#include <chrono>

namespace dtfm::detail {

template <class Clock = std::chrono::steady_clock>
typename Clock::time_point deadline_after(std::chrono::nanoseconds d) {
    const auto now = Clock::now();
    if (d <= std::chrono::nanoseconds::zero()) return now;
    if (d >= Clock::time_point::max() - now) return Clock::time_point::max();
    return now + std::chrono::duration_cast<typename Clock::duration>(d);
}

}  // namespace dtfm::detail
