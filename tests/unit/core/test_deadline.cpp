// detail::deadline_after caps instead of overflowing, so wait_for(nanoseconds::max()) waits
// without a deadline; collective::operation (a background_worker's handle) relies on it.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "dtfm/collective/operation.hpp"  // collective::operation, detail::background_worker
#include "dtfm/detail/deadline.hpp"

using namespace std::chrono_literals;

TEST_CASE("deadline_after: now plus d, capped at a century", "[core][deadline]") {
    using clock = std::chrono::steady_clock;
    const auto before = clock::now();
    const auto d = dtfm::detail::deadline_after(5s);
    CHECK(d >= before + 5s);
    CHECK(d <= clock::now() + 5s);
    const auto start = clock::now();
    const auto forever = dtfm::detail::deadline_after(std::chrono::nanoseconds::max());
    CHECK(forever >= start + dtfm::detail::longest_wait);
    CHECK(forever <= clock::now() + dtfm::detail::longest_wait);
    CHECK(forever > clock::now());  // not wrapped into the past
    CHECK(dtfm::detail::deadline_after(std::chrono::nanoseconds::max() - 1ns) >= start + dtfm::detail::longest_wait);
    const auto past = dtfm::detail::deadline_after(-5s);
    const auto zero = dtfm::detail::deadline_after(0s);
    const auto after = clock::now();
    CHECK(past <= after);
    CHECK(zero <= after);
}

TEST_CASE("collective::operation: wait_for(nanoseconds::max()) waits for the task", "[core][deadline]") {
    dtfm::detail::background_worker worker;
    bool ran = false;
    auto op = worker.submit([&] {
        std::this_thread::sleep_for(20ms);
        ran = true;
    });
    CHECK(op.wait_for(std::chrono::nanoseconds::max()));
    CHECK(ran);
    auto quick = worker.submit([] { std::this_thread::sleep_for(200ms); });
    CHECK_FALSE(quick.wait_for(1ms));
    quick.wait();
}
