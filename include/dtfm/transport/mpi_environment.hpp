// MPI start-up and error conversion for the MPI transport: an RAII environment that initialises
// MPI with the thread level dtfm needs, and check_mpi, which turns a failed MPI call into a
// dtfm::transport_error carrying MPI's own error string. Needs <mpi.h> (the dtfm::mpi component).
#pragma once

#include <mpi.h>

#include <string>

#include "dtfm/error.hpp"

namespace dtfm::detail {

inline std::string mpi_error_string(int code) {
    char text[MPI_MAX_ERROR_STRING] = {};
    int length = 0;
    if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) {
        return "unknown MPI error " + std::to_string(code);
    }
    return std::string(text, static_cast<std::size_t>(length));
}

// Throws transport_error("<call> failed: <MPI's message>") unless rc is MPI_SUCCESS.
inline void check_mpi(int rc, const char* call) {
    if (rc != MPI_SUCCESS) {
        throw transport_error(std::string(call) + " failed: " + mpi_error_string(rc));
    }
}

}  // namespace dtfm::detail

namespace dtfm::transport {

// Initialises MPI unless the program already did, and finalises it on destruction only if it
// initialised it. Errors on MPI_COMM_WORLD return codes instead of aborting, so every failure can
// become a transport_error. dtfm's transports communicate from more than one thread (overlap of
// communication with compute), hence the default of MPI_THREAD_MULTIPLE.
class mpi_environment {
public:
    mpi_environment(int& argc, char**& argv, int required_thread_level = MPI_THREAD_MULTIPLE) {
        init(&argc, &argv, required_thread_level);
    }
    explicit mpi_environment(int required_thread_level = MPI_THREAD_MULTIPLE) {
        init(nullptr, nullptr, required_thread_level);
    }
    mpi_environment(const mpi_environment&) = delete;
    mpi_environment& operator=(const mpi_environment&) = delete;

    ~mpi_environment() {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (owns_ && !finalized) {
            MPI_Finalize();
        }
    }

    int thread_level() const noexcept { return provided_; }

private:
    void init(int* argc, char*** argv, int required) {
        int initialized = 0;
        dtfm::detail::check_mpi(MPI_Initialized(&initialized), "MPI_Initialized");
        if (initialized) {
            dtfm::detail::check_mpi(MPI_Query_thread(&provided_), "MPI_Query_thread");
        } else {
            dtfm::detail::check_mpi(MPI_Init_thread(argc, argv, required, &provided_), "MPI_Init_thread");
            owns_ = true;
        }
        dtfm::detail::check_mpi(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
        if (provided_ < required) {
            throw transport_error("MPI provides thread level " + std::to_string(provided_) + ", dtfm needs " +
                                  std::to_string(required) + " (MPI_THREAD_MULTIPLE is 3)");
        }
    }

    int provided_ = MPI_THREAD_SINGLE;
    bool owns_ = false;
};

}  // namespace dtfm::transport
