// For tests under mpirun: runs a check on this rank and makes every rank agree on the outcome, so
// a failure on any rank fails the test case on all of them, with the failing rank's message.
#pragma once

#include <catch2/catch.hpp>
#include <mpi.h>

#include <exception>
#include <string>

namespace dtfm::test {

template <class F>
void on_every_rank(F&& check) {
    std::string failure;
    try {
        check();
    } catch (const std::exception& e) {
        failure = e.what();
    }
    int failed = failure.empty() ? 0 : 1;
    int any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    INFO(failure);
    REQUIRE(failed == 0);
    REQUIRE(any == 0);
}

}  // namespace dtfm::test
