// transport::mpi: dtfm's transport over MPI non-blocking point-to-point (MPI_Isend/MPI_Irecv) on a
// private duplicate of a communicator, with MPI_Comm_split for sub-groups. Every failed MPI call
// is a dtfm::transport_error carrying MPI's error string. Needs the dtfm::mpi component.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <utility>

#include "dtfm/concepts/transport.hpp"
#include "dtfm/detail/deadline.hpp"
#include "dtfm/error.hpp"
#include "dtfm/spaces.hpp"
#include "dtfm/transport/mpi_environment.hpp"

namespace dtfm::detail {

// (channel, id) in one MPI tag: the channel in bits 24–25, the id below. Needs MPI_TAG_UB of at
// least 2^26 - 1 (Open MPI and MPICH give 2^31 - 1 or more); checked when a transport is made.
inline int mpi_tag(message_tag tag) {
    return static_cast<int>((static_cast<std::uint32_t>(tag.lane) << 24) | tag.id);
}
inline constexpr int mpi_tag_needed = (4 << 24) - 1;

struct mpi_comm_deleter {
    void operator()(MPI_Comm* c) const noexcept {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized && *c != MPI_COMM_NULL) MPI_Comm_free(c);
        delete c;
    }
};

}  // namespace dtfm::detail

namespace dtfm::transport {

// An MPI send or receive in flight. Destroying an unfinished receive cancels it; destroying an
// unfinished send waits for it (MPI cannot take a send back once its buffer may be in use).
class mpi_request {
public:
    mpi_request() = default;
    mpi_request(mpi_request&& o) noexcept
        : request_(std::exchange(o.request_, MPI_REQUEST_NULL)), is_receive_(o.is_receive_),
          bytes_(o.bytes_), done_(o.done_) {}
    mpi_request& operator=(mpi_request&& o) noexcept {
        if (this != &o) {
            abandon();
            request_ = std::exchange(o.request_, MPI_REQUEST_NULL);
            is_receive_ = o.is_receive_;
            bytes_ = o.bytes_;
            done_ = o.done_;
        }
        return *this;
    }
    mpi_request(const mpi_request&) = delete;
    mpi_request& operator=(const mpi_request&) = delete;
    ~mpi_request() { abandon(); }

    std::size_t wait() {
        if (!done_) {
            MPI_Status status;
            dtfm::detail::check_mpi(MPI_Wait(&request_, &status), is_receive_ ? "MPI_Wait(receive)" : "MPI_Wait(send)");
            complete(status);
        }
        return bytes_;
    }

    bool test() {
        if (done_) return true;
        int flag = 0;
        MPI_Status status;
        dtfm::detail::check_mpi(MPI_Test(&request_, &flag, &status), "MPI_Test");
        if (flag) complete(status);
        return done_;
    }

    // MPI has no timed wait: poll MPI_Test. A large message moves only while its ranks call into
    // MPI, so for the first millisecond the poll only yields the core between tests (it runs again
    // at once when nothing else wants the core); then it sleeps between tests, 1 µs doubling to
    // 200 µs, so a rank blocked on the network does not starve the rank it waits for on an
    // oversubscribed machine.
    bool wait_for(std::chrono::nanoseconds timeout) {
        const auto start = std::chrono::steady_clock::now();
        const auto deadline = dtfm::detail::deadline_after(timeout);
        const auto busy_until = start + std::chrono::milliseconds(1);
        auto pause = std::chrono::microseconds(1);
        while (!test()) {
            const auto now = std::chrono::steady_clock::now();
            if (now >= deadline) return false;
            if (now < busy_until) {
                std::this_thread::yield();
                continue;
            }
            std::this_thread::sleep_for(pause);
            pause = std::min(pause * 2, std::chrono::microseconds(200));
        }
        return true;
    }

private:
    friend class mpi;
    mpi_request(MPI_Request r, bool is_receive, std::size_t send_bytes)
        : request_(r), is_receive_(is_receive), bytes_(send_bytes), done_(false) {}

    void complete(const MPI_Status& status) {
        done_ = true;
        if (is_receive_) {
            int count = 0;
            dtfm::detail::check_mpi(MPI_Get_count(&status, MPI_BYTE, &count), "MPI_Get_count");
            bytes_ = static_cast<std::size_t>(count);
        }
    }

    void abandon() noexcept {
        if (done_ || request_ == MPI_REQUEST_NULL) return;
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (finalized) return;
        if (is_receive_) MPI_Cancel(&request_);
        MPI_Wait(&request_, MPI_STATUS_IGNORE);
    }

    MPI_Request request_ = MPI_REQUEST_NULL;
    bool is_receive_ = false;
    std::size_t bytes_ = 0;
    bool done_ = true;
};

// One rank's view of an MPI communicator. The constructor duplicates the communicator it is
// given (collective), so dtfm's traffic never matches a user's messages on the same ranks.
class mpi {
public:
    using transport_concept = transport_tag;
    using memory_space = host_space;
    using request_type = mpi_request;
    static constexpr bool drop_releases_buffer = true;  // a dropped request is cancelled or waited for

    explicit mpi(MPI_Comm parent = MPI_COMM_WORLD) {
        MPI_Comm dup = MPI_COMM_NULL;
        dtfm::detail::check_mpi(MPI_Comm_dup(parent, &dup), "MPI_Comm_dup");
        adopt(dup);
    }

    int rank() const { return rank_; }
    int size() const { return size_; }
    MPI_Comm communicator() const { return *comm_; }

    mpi_request isend(int peer, message_tag tag, std::span<const std::byte> bytes) {
        check(peer, tag, bytes.size(), "isend");
        MPI_Request r = MPI_REQUEST_NULL;
        dtfm::detail::check_mpi(MPI_Isend(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, peer,
                                          dtfm::detail::mpi_tag(tag), *comm_, &r),
                                "MPI_Isend");
        return mpi_request(r, false, bytes.size());
    }

    mpi_request irecv(int peer, message_tag tag, std::span<std::byte> buffer) {
        check(peer, tag, buffer.size(), "irecv");
        MPI_Request r = MPI_REQUEST_NULL;
        dtfm::detail::check_mpi(MPI_Irecv(buffer.data(), static_cast<int>(buffer.size()), MPI_BYTE, peer,
                                          dtfm::detail::mpi_tag(tag), *comm_, &r),
                                "MPI_Irecv");
        return mpi_request(r, true, 0);
    }

    // Collective over this group, as MPI_Comm_split (color must be >= 0).
    mpi split(int color, int key) {
        if (color < 0) throw transport_error("mpi::split: color must be >= 0, got " + std::to_string(color));
        MPI_Comm sub = MPI_COMM_NULL;
        dtfm::detail::check_mpi(MPI_Comm_split(*comm_, color, key, &sub), "MPI_Comm_split");
        return mpi(adopt_tag{}, sub);
    }

private:
    struct adopt_tag {};
    mpi(adopt_tag, MPI_Comm c) { adopt(c); }

    void adopt(MPI_Comm c) {
        comm_ = std::shared_ptr<MPI_Comm>(new MPI_Comm(c), dtfm::detail::mpi_comm_deleter{});
        dtfm::detail::check_mpi(MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
        dtfm::detail::check_mpi(MPI_Comm_rank(c, &rank_), "MPI_Comm_rank");
        dtfm::detail::check_mpi(MPI_Comm_size(c, &size_), "MPI_Comm_size");
        void* value = nullptr;
        int found = 0;
        dtfm::detail::check_mpi(MPI_Comm_get_attr(c, MPI_TAG_UB, &value, &found), "MPI_Comm_get_attr(MPI_TAG_UB)");
        if (found && *static_cast<int*>(value) < dtfm::detail::mpi_tag_needed) {
            throw transport_error("this MPI's MPI_TAG_UB (" + std::to_string(*static_cast<int*>(value)) +
                                  ") is below the 2^26 - 1 dtfm's channels need");
        }
    }

    void check(int peer, message_tag tag, std::size_t bytes, const char* call) const {
        if (peer < 0 || peer >= size_) {
            throw transport_error(std::string("mpi::") + call + ": peer " + std::to_string(peer) +
                                  " is not in a group of " + std::to_string(size_));
        }
        if (tag.id > message_tag::max_id) {
            throw transport_error(std::string("mpi::") + call + ": message id " + std::to_string(tag.id) +
                                  " exceeds 2^24 - 1");
        }
        if (bytes > static_cast<std::size_t>(INT_MAX)) {
            throw transport_error(std::string("mpi::") + call + ": " + std::to_string(bytes) +
                                  " bytes exceed one MPI message (2^31 - 1); split the buffer");
        }
    }

    std::shared_ptr<MPI_Comm> comm_;  // shared by copies, freed with the last
    int rank_ = 0;
    int size_ = 0;
};

static_assert(dtfm::concepts::transport<mpi>);

}  // namespace dtfm::transport
