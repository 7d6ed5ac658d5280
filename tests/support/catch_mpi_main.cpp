// Catch2 main for MPI tests: every rank runs the same test cases between MPI_Init_thread and
// MPI_Finalize. A test that fails on one rank fails the run on every rank (the exit codes are
// combined), so mpirun reports it whichever rank saw it.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <mpi.h>

#include "dtfm/transport/mpi_environment.hpp"

int main(int argc, char* argv[]) {
    dtfm::transport::mpi_environment env(argc, argv);
    const int failed = Catch::Session().run(argc, argv);
    int any_failed = 0;
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return any_failed == 0 ? 0 : 1;
}
