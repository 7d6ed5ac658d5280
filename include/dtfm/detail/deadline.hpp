// The deadline of a timed wait, `now + d`, capped at a century: wait_for(nanoseconds::max())
// means "no deadline", but now() + max overflows to a time in the past, and so does
// std::condition_variable::wait_for, which adds the same way. Every wait_for computes its deadline
// here and waits with wait_until. A century, not the clock's last time point, so a standard
// library that converts the deadline to the system clock (no pthread_cond_clockwait) cannot
// overflow either.
#pragma once

#include <algorithm>
#include <chrono>

namespace dtfm::detail {

inline constexpr std::chrono::nanoseconds longest_wait = std::chrono::hours(24 * 365 * 100);

template <class Clock = std::chrono::steady_clock>
typename Clock::time_point deadline_after(std::chrono::nanoseconds d) {
    const auto now = Clock::now();
    if (d <= std::chrono::nanoseconds::zero()) return now;
    return now + std::chrono::duration_cast<typename Clock::duration>(std::min(d, longest_wait));
}

}  // namespace dtfm::detail
