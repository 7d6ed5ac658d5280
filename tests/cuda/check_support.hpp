// What the CUDA checks (compress_checks.hpp, gpt_checks.hpp) share: a failure count and expect()
// that prints what failed, device vectors as spans and back on the host, and bitwise comparison
// of floats. Plain functions, no test framework, so the checks build with nvcc and with g++.
#pragma once

#include <thrust/copy.h>
#include <thrust/device_vector.h>

#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace checks {

inline int failures = 0;

inline void expect(bool ok, const std::string& what) {
    if (!ok) {
        std::printf("FAILED: %s\n", what.c_str());
        ++failures;
    }
}

template <class T>
std::span<T> span_of(thrust::device_vector<T>& d) {
    return {thrust::raw_pointer_cast(d.data()), d.size()};
}

template <class T>
std::vector<T> to_host(const thrust::device_vector<T>& d) {
    std::vector<T> h(d.size());
    thrust::copy(d.begin(), d.end(), h.begin());
    return h;
}

inline bool same_bits(std::span<const float> a, std::span<const float> b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0);
}

}  // namespace checks
