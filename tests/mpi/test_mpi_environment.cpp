// The MPI environment under mpirun: every rank agrees on the world, and a failed MPI call becomes
// a dtfm::transport_error carrying MPI's error string instead of aborting the job.
#include <catch2/catch.hpp>

#include <mpi.h>

#include <string>
#include <vector>

#include "dtfm/transport/mpi_environment.hpp"

TEST_CASE("every rank sees the same world", "[mpi]") {
    int rank = -1;
    int size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    REQUIRE(size >= 2);
    REQUIRE(rank >= 0);
    REQUIRE(rank < size);

    int sum = 0;
    dtfm::detail::check_mpi(MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    REQUIRE(sum == size * (size - 1) / 2);
}

TEST_CASE("the environment provides MPI_THREAD_MULTIPLE", "[mpi]") {
    int provided = 0;
    MPI_Query_thread(&provided);
    REQUIRE(provided == MPI_THREAD_MULTIPLE);
}

TEST_CASE("a failed MPI call becomes a transport_error with MPI's message", "[mpi]") {
    int size = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const int payload = 7;
    const int rc = MPI_Send(&payload, 1, MPI_INT, size /* no such rank */, 0, MPI_COMM_WORLD);
    REQUIRE(rc != MPI_SUCCESS);
    int error_class = 0;
    MPI_Error_class(rc, &error_class);
    REQUIRE(error_class == MPI_ERR_RANK);

    try {
        dtfm::detail::check_mpi(rc, "MPI_Send");
        FAIL("check_mpi did not throw");
    } catch (const dtfm::transport_error& e) {
        const std::string what = e.what();
        REQUIRE(what.find("MPI_Send failed: ") == 0);
        REQUIRE(what.find(dtfm::detail::mpi_error_string(rc)) != std::string::npos);
        REQUIRE(what.size() > std::string("MPI_Send failed: ").size());
    }
    REQUIRE_NOTHROW(dtfm::detail::check_mpi(MPI_SUCCESS, "MPI_Barrier"));
}

TEST_CASE("ranks exchange a message around a ring", "[mpi]") {
    int rank = 0;
    int size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    std::vector<int> out(1000, rank);
    std::vector<int> in(1000, -1);
    const int next = (rank + 1) % size;
    const int prev = (rank + size - 1) % size;
    MPI_Request reqs[2];
    dtfm::detail::check_mpi(MPI_Irecv(in.data(), 1000, MPI_INT, prev, 3, MPI_COMM_WORLD, &reqs[0]), "MPI_Irecv");
    dtfm::detail::check_mpi(MPI_Isend(out.data(), 1000, MPI_INT, next, 3, MPI_COMM_WORLD, &reqs[1]), "MPI_Isend");
    dtfm::detail::check_mpi(MPI_Waitall(2, reqs, MPI_STATUSES_IGNORE), "MPI_Waitall");
    REQUIRE(in == std::vector<int>(1000, prev));
}
