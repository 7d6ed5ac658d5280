// Checks inside rank threads. Catch2's assertion macros are not thread-safe, so code running on
// an inproc rank checks with these instead: a failed check throws, run_inproc rethrows it on the
// test's thread, and the Catch2 REQUIRE around run_inproc reports it with file and line.
#pragma once

#include <stdexcept>
#include <string>

namespace dtfm::test {

struct rank_check_failed : std::logic_error {
    using std::logic_error::logic_error;
};

}  // namespace dtfm::test

#define DTFM_RANK_REQUIRE(...)                                                                          \
    do {                                                                                                \
        if (!(__VA_ARGS__)) {                                                                           \
            throw ::dtfm::test::rank_check_failed(std::string(__FILE__) + ":" + std::to_string(__LINE__) + \
                                                  ": DTFM_RANK_REQUIRE(" #__VA_ARGS__ ") failed");      \
        }                                                                                               \
    } while (false)

#define DTFM_RANK_REQUIRE_THROWS_AS(expr, type)                                                   \
    do {                                                                                          \
        bool dtfm_threw_ = false;                                                                 \
        try {                                                                                     \
            (void)(expr);                                                                         \
        } catch (const type&) {                                                                   \
            dtfm_threw_ = true;                                                                   \
        }                                                                                         \
        if (!dtfm_threw_) {                                                                       \
            throw ::dtfm::test::rank_check_failed(std::string(__FILE__) + ":" +                   \
                                                  std::to_string(__LINE__) + ": " #expr           \
                                                  " did not throw " #type);                       \
        }                                                                                         \
    } while (false)
