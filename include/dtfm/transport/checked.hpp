// checked<T>: integrity checking for untrusted links. Every message is preceded by a 24-byte frame
// header — magic, version, kind, payload length, CRC32C of the payload, CRC32C of the header — and
// a receive that finds a bad header, a length that disagrees, or a changed byte raises
// dtfm::wire_error. The payload travels as its own message straight into the caller's buffer.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "dtfm/concepts/transport.hpp"
#include "dtfm/detail/deadline.hpp"
#include "dtfm/error.hpp"
#include "dtfm/wire/crc32c.hpp"
#include "dtfm/wire/endian.hpp"

namespace dtfm::wire {

// The frame header checked<T> sends before each payload.
struct frame_header {
    static constexpr std::uint32_t magic = 0x4D465444;  // "DTFM" in little-endian byte order
    static constexpr std::uint8_t version = 1;
    static constexpr std::uint8_t kind = 1;  // a transport frame (compressor payloads use others)
    static constexpr std::size_t size = 24;

    std::uint64_t payload_bytes = 0;
    std::uint32_t payload_crc = 0;

    void write(std::span<std::byte, size> out) const {
        store_le<std::uint32_t>(out.data(), magic);
        out[4] = std::byte{version};
        out[5] = std::byte{kind};
        store_le<std::uint16_t>(out.data() + 6, 0);
        store_le<std::uint64_t>(out.data() + 8, payload_bytes);
        store_le<std::uint32_t>(out.data() + 16, payload_crc);
        store_le<std::uint32_t>(out.data() + 20, crc32c(out.first(20)));
    }

    // Parses `in` (the bytes a receive delivered, which may be any length).
    static frame_header read(std::span<const std::byte> in) {
        if (in.size() != size) {
            throw wire_error(wire_error::reason::truncated,
                             "frame header of " + std::to_string(in.size()) + " bytes, expected 24");
        }
        if (load_le<std::uint32_t>(in.data()) != magic) {
            throw wire_error(wire_error::reason::bad_magic, "frame header: bad magic");
        }
        if (load_le<std::uint32_t>(in.data() + 20) != crc32c(in.first(20))) {
            throw wire_error(wire_error::reason::checksum_mismatch, "frame header: checksum mismatch");
        }
        if (static_cast<std::uint8_t>(in[4]) != version) {
            throw wire_error(wire_error::reason::bad_version,
                             "frame header: version " + std::to_string(static_cast<int>(in[4])) + ", expected 1");
        }
        if (static_cast<std::uint8_t>(in[5]) != kind) {
            throw wire_error(wire_error::reason::bad_kind, "frame header: not a transport frame");
        }
        frame_header h;
        h.payload_bytes = load_le<std::uint64_t>(in.data() + 8);
        h.payload_crc = load_le<std::uint32_t>(in.data() + 16);
        return h;
    }
};

}  // namespace dtfm::wire

namespace dtfm::transport {

template <class T>
class checked_request {
public:
    checked_request() = default;

    std::size_t wait() {
        header_.wait();
        const std::size_t n = payload_.wait();
        return verify(n);
    }

    bool test() {
        if (!header_.test() || !payload_.test()) return false;
        verify(payload_.wait());
        return true;
    }

    bool wait_for(std::chrono::nanoseconds timeout) {
        const auto deadline = dtfm::detail::deadline_after(timeout);
        if (!header_.wait_for(timeout)) return false;
        const auto left = std::max(deadline - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration{});
        if (!payload_.wait_for(left)) return false;
        verify(payload_.wait());
        return true;
    }

private:
    template <concepts::transport>
    friend class checked;

    // Checks a received frame once; a send has nothing to check.
    std::size_t verify(std::size_t received) {
        if (!receive_ || verified_) return received;
        header_.wait();
        const auto h = wire::frame_header::read(std::span<const std::byte>(frame_->data(), header_bytes()));
        if (h.payload_bytes != received) {
            throw wire_error(wire_error::reason::bad_length, "frame of " + std::to_string(received) +
                                                                 " bytes, its header says " +
                                                                 std::to_string(h.payload_bytes));
        }
        if (wire::crc32c(payload_span_.first(received)) != h.payload_crc) {
            throw wire_error(wire_error::reason::checksum_mismatch,
                             "payload of " + std::to_string(received) + " bytes: checksum mismatch");
        }
        verified_ = true;
        return received;
    }
    std::size_t header_bytes() { return header_.wait(); }

    std::unique_ptr<std::array<std::byte, wire::frame_header::size>> frame_;  // stable while in flight
    typename T::request_type header_;
    typename T::request_type payload_;
    std::span<const std::byte> payload_span_;
    bool receive_ = false;
    bool verified_ = false;
};

template <concepts::transport T>
class checked {
public:
    using transport_concept = transport_tag;
    using memory_space = typename T::memory_space;
    using request_type = checked_request<T>;

    explicit checked(T inner) : inner_(std::move(inner)) {}

    int rank() const { return inner_.rank(); }
    int size() const { return inner_.size(); }
    T& inner() { return inner_; }

    request_type isend(int peer, message_tag tag, std::span<const std::byte> bytes) {
        request_type r;
        r.frame_ = std::make_unique<std::array<std::byte, wire::frame_header::size>>();
        wire::frame_header{bytes.size(), wire::crc32c(bytes)}.write(*r.frame_);
        r.header_ = inner_.isend(peer, tag, *r.frame_);
        r.payload_ = inner_.isend(peer, tag, bytes);
        return r;
    }

    // The header and the payload are matched in order on the same (peer, tag).
    request_type irecv(int peer, message_tag tag, std::span<std::byte> buffer) {
        request_type r;
        r.frame_ = std::make_unique<std::array<std::byte, wire::frame_header::size>>();
        r.receive_ = true;
        r.payload_span_ = buffer;
        r.header_ = inner_.irecv(peer, tag, *r.frame_);
        r.payload_ = inner_.irecv(peer, tag, buffer);
        return r;
    }

    checked split(int color, int key) { return checked(inner_.split(color, key)); }

private:
    T inner_;
};

}  // namespace dtfm::transport
