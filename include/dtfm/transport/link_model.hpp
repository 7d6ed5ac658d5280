// link_model: the bandwidth and latency of every directed link between devices, an optional cap on
// what each device's NIC sends in total, and a time scale — what throttled<T> emulates. Built from
// uniform values or from a topology (the scenarios' delay_ms / bandwidth_gbps matrices).
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "dtfm/error.hpp"

namespace dtfm::transport {

class link_model {
public:
    static link_model uniform(int devices, double delay_ms, double bandwidth_gbps) {
        link_model m(devices);
        for (int a = 0; a < devices; ++a) {
            for (int b = 0; b < devices; ++b) m.set_link(a, b, delay_ms, bandwidth_gbps);
        }
        return m;
    }

    // Any topology with size(), delay_ms(a, b) and bandwidth_gbps(a, b) (dtfm::plan::topology).
    template <class Topology>
        requires requires(const Topology& t, int a) {
            { t.size() } -> std::convertible_to<int>;
            { t.delay_ms(a, a) } -> std::convertible_to<double>;
            { t.bandwidth_gbps(a, a) } -> std::convertible_to<double>;
        }
    static link_model from_topology(const Topology& t) {
        const int n = static_cast<int>(t.size());
        link_model m(n);
        for (int a = 0; a < n; ++a) {
            for (int b = 0; b < n; ++b) {
                if (a != b) m.set_link(a, b, t.delay_ms(a, b), t.bandwidth_gbps(a, b));
            }
        }
        return m;
    }

    int devices() const { return devices_; }

    // One direction of one link. A device sending to itself is never throttled.
    link_model& set_link(int from, int to, double delay_ms, double bandwidth_gbps) {
        check_device(from);
        check_device(to);
        if (from == to) return *this;
        if (!(std::isfinite(delay_ms) && delay_ms >= 0)) {
            throw config_error("link " + pair(from, to) + ": delay " + std::to_string(delay_ms) +
                               " ms must be finite and >= 0");
        }
        if (!(std::isfinite(bandwidth_gbps) && bandwidth_gbps > 0)) {
            throw config_error("link " + pair(from, to) + ": bandwidth " + std::to_string(bandwidth_gbps) +
                               " Gbps must be finite and > 0");
        }
        delay_s_[index(from, to)] = delay_ms / 1e3;
        bytes_per_s_[index(from, to)] = bandwidth_gbps * 1e9 / 8;
        return *this;
    }

    // Caps the sum of what each device sends over all its links (a NIC slower than its links).
    link_model& with_nic_cap(double gbps) {
        for (int d = 0; d < devices_; ++d) with_nic_cap(d, gbps);
        return *this;
    }
    link_model& with_nic_cap(int device, double gbps) {
        check_device(device);
        if (!(std::isfinite(gbps) && gbps > 0)) {
            throw config_error("NIC cap of device " + std::to_string(device) + ": " + std::to_string(gbps) +
                               " Gbps must be finite and > 0");
        }
        nic_bytes_per_s_[static_cast<std::size_t>(device)] = gbps * 1e9 / 8;
        return *this;
    }

    // Multiplies every emulated duration: 2 runs the topology twice as slow, 0.01 a hundred
    // times as fast (useful to run a WAN topology's shape in a short test).
    link_model& with_time_scale(double scale) {
        if (!(std::isfinite(scale) && scale > 0)) {
            throw config_error("time scale " + std::to_string(scale) + " must be finite and > 0");
        }
        time_scale_ = scale;
        return *this;
    }

    double delay_seconds(int from, int to) const { return from == to ? 0.0 : delay_s_[index(from, to)]; }
    double bytes_per_second(int from, int to) const {
        return from == to ? std::numeric_limits<double>::infinity() : bytes_per_s_[index(from, to)];
    }
    double nic_bytes_per_second(int device) const { return nic_bytes_per_s_[static_cast<std::size_t>(device)]; }
    double time_scale() const { return time_scale_; }

private:
    explicit link_model(int devices) : devices_(devices) {
        if (devices < 1 || devices > 65536) {
            throw config_error("a link model needs 1 to 65536 devices, got " + std::to_string(devices));
        }
        const auto n = static_cast<std::size_t>(devices);
        delay_s_.assign(n * n, 0.0);
        bytes_per_s_.assign(n * n, std::numeric_limits<double>::infinity());
        nic_bytes_per_s_.assign(n, std::numeric_limits<double>::infinity());
    }

    std::size_t index(int from, int to) const {
        return static_cast<std::size_t>(from) * static_cast<std::size_t>(devices_) + static_cast<std::size_t>(to);
    }
    void check_device(int d) const {
        if (d < 0 || d >= devices_) {
            throw config_error("device " + std::to_string(d) + " is not in a link model of " +
                               std::to_string(devices_) + " devices");
        }
    }
    static std::string pair(int a, int b) { return std::to_string(a) + "->" + std::to_string(b); }

    int devices_ = 0;
    std::vector<double> delay_s_;
    std::vector<double> bytes_per_s_;
    std::vector<double> nic_bytes_per_s_;
    double time_scale_ = 1.0;
};

}  // namespace dtfm::transport
