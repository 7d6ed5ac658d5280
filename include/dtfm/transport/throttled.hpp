// throttled<T>: emulates slow links over any transport. A message from device a to device b starts
// when the link a→b and a's NIC are free, occupies them for bytes / bandwidth (the send completes
// when its last byte has left), and completes at b one latency later. Messages on a link queue
// first-in first-out, as on a tbf qdisc, so concurrent messages share its bandwidth; a NIC cap is a
// second queue every link of the device passes through. The schedule is exact; delivery adds only
// a thread's wake-up jitter (tens of microseconds). Each message is preceded by an 8-byte message
// with its arrival time on the steady clock, so all ranks must share one clock (one machine), as
// an emulation does.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dtfm/concepts/transport.hpp"
#include "dtfm/detail/deferred_send.hpp"
#include "dtfm/error.hpp"
#include "dtfm/transport/link_model.hpp"

namespace dtfm::transport {

// A throttled send (a deferred send of the stamp and the payload) or receive (both inner receives;
// it completes once they have and the stamped arrival time has come).
template <class T>
class throttled_request {
    using clock = dtfm::detail::deferred_clock;

public:
    throttled_request() = default;
    explicit throttled_request(deferred_request<T> send) : send_(std::move(send)) {}
    explicit throttled_request(typename T::request_type unthrottled_receive) {
        payload_.emplace(std::move(unthrottled_receive));
    }
    throttled_request(T& inner, int peer, message_tag tag, std::span<std::byte> buffer)
        : stamp_value_(std::make_unique<std::int64_t>(0)) {
        stamp_.emplace(inner.irecv(peer, tag, std::as_writable_bytes(std::span(stamp_value_.get(), 1))));
        payload_.emplace(inner.irecv(peer, tag, buffer));
    }

    std::size_t wait() {
        if (!payload_) return send_.wait();
        check_stamp(stamp_ ? stamp_->wait() : sizeof(std::int64_t));
        const std::size_t n = payload_->wait();
        std::this_thread::sleep_until(arrival());
        return n;
    }

    bool test() {
        if (!payload_) return send_.test();
        if (stamp_ && !stamp_->test()) return false;
        if (!payload_->test()) return false;
        check_stamp(stamp_ ? stamp_->wait() : sizeof(std::int64_t));
        return clock::now() >= arrival();
    }

    bool wait_for(std::chrono::nanoseconds timeout) {
        if (!payload_) return send_.wait_for(timeout);
        const auto deadline = dtfm::detail::deadline_after<clock>(timeout);
        auto left = [&] { return std::max(deadline - clock::now(), clock::duration{}); };
        if (stamp_ && !stamp_->wait_for(left())) return false;
        if (!payload_->wait_for(left())) return false;
        check_stamp(stamp_ ? stamp_->wait() : sizeof(std::int64_t));
        if (arrival() > deadline) {
            std::this_thread::sleep_until(deadline);
            return false;
        }
        std::this_thread::sleep_until(arrival());
        return true;
    }

private:
    clock::time_point arrival() const {
        if (!stamp_value_) return {};
        return clock::time_point(std::chrono::duration_cast<clock::duration>(std::chrono::nanoseconds(*stamp_value_)));
    }
    static void check_stamp(std::size_t bytes) {
        if (bytes != sizeof(std::int64_t)) {
            throw wire_error(wire_error::reason::bad_length,
                             "throttled: expected an 8-byte arrival stamp, got " + std::to_string(bytes) +
                                 " bytes (is the sender throttled too?)");
        }
    }

    deferred_request<T> send_;
    std::unique_ptr<std::int64_t> stamp_value_;  // stable while the receive is in flight
    std::optional<typename T::request_type> stamp_;
    std::optional<typename T::request_type> payload_;
};

template <concepts::transport T>
class throttled {
    using clock = dtfm::detail::deferred_clock;

    // When each directed link and each NIC is next free. Shared by a rank's whole tree of
    // sub-groups (they send over the same wires); only the sending rank ever touches a link.
    struct wires {
        explicit wires(link_model m)
            : model(std::move(m)),
              link_free(static_cast<std::size_t>(model.devices()) * static_cast<std::size_t>(model.devices())),
              nic_free(static_cast<std::size_t>(model.devices())) {}
        link_model model;
        std::mutex mutex;
        std::vector<clock::time_point> link_free;
        std::vector<clock::time_point> nic_free;
        std::shared_ptr<dtfm::detail::deferred_scheduler<T>> scheduler =
            std::make_shared<dtfm::detail::deferred_scheduler<T>>();
    };

public:
    using transport_concept = transport_tag;
    using memory_space = typename T::memory_space;
    using request_type = throttled_request<T>;

    // device_of_rank[r] is the device (row of the model) rank r runs on; empty means rank r is
    // device r. Collective only in that every rank must build its own.
    throttled(T inner, link_model model, std::vector<int> device_of_rank = {})
        : inner_(std::make_shared<T>(std::move(inner))), wires_(std::make_shared<wires>(std::move(model))),
          device_of_(std::move(device_of_rank)) {
        if (device_of_.empty()) {
            device_of_.resize(static_cast<std::size_t>(inner_->size()));
            std::iota(device_of_.begin(), device_of_.end(), 0);
        }
        if (device_of_.size() != static_cast<std::size_t>(inner_->size())) {
            throw config_error("throttled: " + std::to_string(device_of_.size()) + " devices given for " +
                               std::to_string(inner_->size()) + " ranks");
        }
        for (int d : device_of_) {
            if (d < 0 || d >= wires_->model.devices()) {
                throw config_error("throttled: device " + std::to_string(d) + " is not in the link model of " +
                                   std::to_string(wires_->model.devices()) + " devices");
            }
        }
    }

    int rank() const { return inner_->rank(); }
    int size() const { return inner_->size(); }
    int device() const { return device_of_[static_cast<std::size_t>(rank())]; }
    int device_of(int rank) const { return device_of_.at(static_cast<std::size_t>(rank)); }
    const link_model& model() const { return wires_->model; }
    T& inner() { return *inner_; }

    // The emulated schedule of the message just sent: when it started onto the link (after the
    // messages ahead of it), when its last byte left, and when it arrives. For tests and benchmarks.
    struct schedule {
        clock::time_point start, departure, arrival;
    };
    const schedule& last_schedule() const { return last_; }
    clock::time_point last_arrival() const { return last_.arrival; }

    request_type isend(int peer, message_tag tag, std::span<const std::byte> bytes) {
        if (peer < 0 || peer >= size()) {
            throw transport_error("throttled::isend: peer " + std::to_string(peer) + " is not in a group of " +
                                  std::to_string(size()));
        }
        const int from = device();
        const int to = device_of_[static_cast<std::size_t>(peer)];
        if (from == to) return request_type(deferred_request<T>::posted(inner_->isend(peer, tag, bytes)));

        const auto& m = wires_->model;
        // The message streams at the slower of link and NIC; the NIC is free for the next
        // message (to another peer) once it has pushed these bytes at its own rate.
        const double size = static_cast<double>(bytes.size());
        const double rate = std::min(m.bytes_per_second(from, to), m.nic_bytes_per_second(from));
        const auto transfer = seconds(size / rate * m.time_scale());
        const auto nic_busy = seconds(size / m.nic_bytes_per_second(from) * m.time_scale());
        const auto latency = seconds(m.delay_seconds(from, to) * m.time_scale());
        clock::time_point start, departure, arrival;
        {
            std::lock_guard lock(wires_->mutex);
            auto& link = wires_->link_free[static_cast<std::size_t>(from) * static_cast<std::size_t>(m.devices()) +
                                           static_cast<std::size_t>(to)];
            auto& nic = wires_->nic_free[static_cast<std::size_t>(from)];
            start = std::max({clock::now(), link, nic});
            link = start + transfer;
            nic = start + nic_busy;
            departure = link;
            arrival = departure + latency;
        }
        last_ = {start, departure, arrival};
        auto op = std::make_shared<dtfm::detail::deferred_op<T>>();
        op->transport = inner_;
        op->peer = peer;
        op->tag = tag;
        op->bytes = bytes;
        op->stamp = std::chrono::duration_cast<std::chrono::nanoseconds>(arrival.time_since_epoch()).count();
        return request_type(deferred_request<T>::scheduled(wires_->scheduler, departure, std::move(op)));
    }

    request_type irecv(int peer, message_tag tag, std::span<std::byte> buffer) {
        if (peer < 0 || peer >= size()) {
            throw transport_error("throttled::irecv: peer " + std::to_string(peer) + " is not in a group of " +
                                  std::to_string(size()));
        }
        if (device_of_[static_cast<std::size_t>(peer)] == device()) return request_type(inner_->irecv(peer, tag, buffer));
        return request_type(*inner_, peer, tag, buffer);
    }

    // Collective: splits the inner transport and tells every member of the new group which device
    // each of its ranks runs on (one small unthrottled message per pair, on the control channel).
    throttled split(int color, int key) {
        T sub = inner_->split(color, key);
        const std::int32_t mine = device();
        std::vector<std::int32_t> devices(static_cast<std::size_t>(sub.size()));
        std::vector<typename T::request_type> pending;
        constexpr message_tag setup{channel::control, message_tag::max_id};
        for (int r = 0; r < sub.size(); ++r) {
            if (r == sub.rank()) continue;
            pending.push_back(sub.irecv(r, setup, std::as_writable_bytes(std::span(&devices[static_cast<std::size_t>(r)], 1))));
            pending.push_back(sub.isend(r, setup, std::as_bytes(std::span(&mine, 1))));
        }
        for (auto& p : pending) p.wait();
        devices[static_cast<std::size_t>(sub.rank())] = mine;
        return throttled(std::move(sub), wires_, std::vector<int>(devices.begin(), devices.end()));
    }

private:
    throttled(T inner, std::shared_ptr<wires> w, std::vector<int> device_of_rank)
        : inner_(std::make_shared<T>(std::move(inner))), wires_(std::move(w)), device_of_(std::move(device_of_rank)) {}

    static clock::duration seconds(double s) {
        return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s));
    }

    std::shared_ptr<T> inner_;
    std::shared_ptr<wires> wires_;
    std::vector<int> device_of_;
    schedule last_{};
};

}  // namespace dtfm::transport
