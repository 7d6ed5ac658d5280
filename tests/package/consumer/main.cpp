// A consumer of the dtfm package: two in-process ranks exchange a message through
// transport::inproc; built with dtfm::mpi, the MPI ranks also agree on their world through
// dtfm's MPI environment; built with dtfm::blas, a 2×2 product goes through nn::gemm. Prints
// "consumer ok" on success.
#include <cstdio>
#include <cstring>
#include <span>
#include <string>

#include <dtfm/dtfm.hpp>
#if DTFM_HAS_MPI
#include <dtfm/transport/mpi_environment.hpp>
#endif
#if DTFM_CONSUMER_JSON
#include <dtfm/plan/topology.hpp>
#endif
#if DTFM_CONSUMER_BLAS
#include <dtfm/nn/gemm.hpp>
#endif

static_assert(dtfm::concepts::transport<dtfm::transport::inproc>);
static_assert(DTFM_VERSION_MAJOR == 0);

int main(int argc, char** argv) {
#if DTFM_HAS_MPI
    dtfm::transport::mpi_environment env(argc, argv);
    int rank = 0, size = 0, sum = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    dtfm::detail::check_mpi(MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    if (sum != size * (size - 1) / 2) {
        std::puts("consumer FAILED: ranks disagree");
        return 1;
    }
#else
    (void)argc;
    (void)argv;
#endif
#if DTFM_CONSUMER_JSON
    const auto topo = dtfm::plan::parse_topology(R"({"delay_ms": [[0, 5], [5, 0]], "bandwidth_gbps": [[0, 1], [1, 0]]})");
    if (topo.size() != 2 || topo.delay_ms(0, 1) != 5.0) {
        std::puts("consumer FAILED: topology");
        return 1;
    }
#endif
#if DTFM_CONSUMER_BLAS
    const float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
    float c[4] = {};
    dtfm::nn::gemm(dtfm::nn::transpose::no, dtfm::nn::transpose::no, 2, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2);
    if (c[0] != 19 || c[1] != 22 || c[2] != 43 || c[3] != 50) {
        std::puts("consumer FAILED: gemm");
        return 1;
    }
#endif
    std::string received(5, '?');
    dtfm::transport::run_inproc(2, [&](dtfm::transport::inproc& t) {
        const dtfm::message_tag tag{dtfm::channel::user, 1};
        if (t.rank() == 0) {
            const char hello[] = "hello";
            t.isend(1, tag, std::as_bytes(std::span(hello, 5))).wait();
        } else {
            t.irecv(0, tag, std::as_writable_bytes(std::span(received.data(), received.size()))).wait();
        }
    });
    if (received != "hello") {
        std::printf("consumer FAILED: received '%s'\n", received.c_str());
        return 1;
    }
    std::printf("consumer ok: dtfm %d.%d.%d\n", dtfm::version.major, dtfm::version.minor, dtfm::version.patch);
    return 0;
}
