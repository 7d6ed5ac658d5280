// Version, feature macros and DTFM_HOST_DEVICE: the one header every other dtfm header includes.
#pragma once

#define DTFM_VERSION_MAJOR 0
#define DTFM_VERSION_MINOR 1
#define DTFM_VERSION_PATCH 0
#define DTFM_VERSION (DTFM_VERSION_MAJOR * 10000 + DTFM_VERSION_MINOR * 100 + DTFM_VERSION_PATCH)

#if __cplusplus < 202002L && !(defined(_MSVC_LANG) && _MSVC_LANG >= 202002L)
#error "dtfm needs C++20"
#endif

// Functions shared by host and device code (the per-element and per-block math) carry this
// marker; without nvcc it degrades to plain `inline`, so g++ builds and tests them.
#if defined(__CUDACC__)
#define DTFM_HOST_DEVICE __host__ __device__ inline
#define DTFM_DEVICE_COMPILER 1
#else
#define DTFM_HOST_DEVICE inline
#define DTFM_DEVICE_COMPILER 0
#endif

// Components: the CMake targets dtfm::mpi and dtfm::cuda define these, so code (and tests) can
// ask whether a transport or space is available in this build. A user who includes the MPI or
// CUDA headers directly gets them regardless.
#ifndef DTFM_HAS_MPI
#define DTFM_HAS_MPI 0
#endif
#ifndef DTFM_HAS_CUDA
#define DTFM_HAS_CUDA 0
#endif

namespace dtfm {

struct version_info {
    int major;
    int minor;
    int patch;
};

inline constexpr version_info version{DTFM_VERSION_MAJOR, DTFM_VERSION_MINOR, DTFM_VERSION_PATCH};

}  // namespace dtfm
