#!/usr/bin/env bash
# On a GPU machine with the CUDA toolkit alone (Catch2, MPI, Google Benchmark and CMake not needed):
# compiles every .cuh header, the GPU tests (tests/cuda/*.cu) and the GPU benchmark with nvcc in
# parallel, and the Thrust-CPP test with g++ where there is one; runs the tests, then the benchmark
# (benchmarks/gpu/bench_gpu.cu: quantize 4/8-bit encode and decode, top-k 1% of 64M floats and the
# other compressors, each as a ratio to a device-to-device copy measured in the same run; a tiny-GPT
# training step on the device, and on the host beside it where OpenBLAS is installed).
# Writes gpu.log and gpu-bench.json to $OUT (or build/gpu). About 3–5 minutes on an H100 node.
# A GPU that is installed but unusable (a driver older than the CUDA runtime) stops the run before
# the build, and on a machine with a GPU a skipped test or benchmark counts as a failure.
# Environment: DTFM_CUDA_ARCH (nvcc -arch; default the first GPU's compute capability from
# nvidia-smi, else native), DTFM_GPU_BENCH_ELEMENTS (default 64Mi), DTFM_GPU_JOBS (parallel
# compilations, default the core count). To build on another machine and only run here:
# DTFM_GPU_BIN=DIR keeps the programs in DIR, DTFM_GPU_BUILD_ONLY=1 stops after the build,
# DTFM_GPU_SKIP_BUILD=1 runs what DIR holds (built with the same CUDA major version and arch).
set -uo pipefail
# DTFM_GPU_BIN is taken relative to where the script is called from.
if [ -n "${DTFM_GPU_BIN:-}" ]; then
    mkdir -p "$DTFM_GPU_BIN" && DTFM_GPU_BIN="$(cd "$DTFM_GPU_BIN" && pwd)"
elif [ "${DTFM_GPU_SKIP_BUILD:-0}" = 1 ]; then
    echo "DTFM_GPU_SKIP_BUILD=1 needs DTFM_GPU_BIN, the folder of programs built before" >&2
    exit 2
fi
cd "$(dirname "$0")/../.."
out="${OUT:-build/gpu}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
if [ -n "${DTFM_GPU_BIN:-}" ]; then
    work="$DTFM_GPU_BIN"
else
    work="$(mktemp -d)"
fi
gpu_listed=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then gpu_listed=1; fi
arch="${DTFM_CUDA_ARCH:-}"
if [ -z "$arch" ]; then
    cap="$( (nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null || true) | head -1 | tr -d ' .')"
    case "$cap" in [1-9][0-9]|[1-9][0-9][0-9]) arch="sm_$cap" ;; *) arch=native ;; esac
fi
elements="${DTFM_GPU_BENCH_ELEMENTS:-67108864}"
max_jobs="${DTFM_GPU_JOBS:-$(nproc)}"
if ! command -v nvcc >/dev/null 2>&1; then
    for dir in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
        if [ -x "$dir/nvcc" ]; then export PATH="$dir:$PATH"; break; fi
    done
fi
nvcc_flags=(-std=c++20 -O3 --expt-relaxed-constexpr -Iinclude -Itests/cuda -Xcompiler=-Wall,-Wextra)

# build NAME COMMAND…: runs in the background, its output in $work/NAME.log, its status in NAME.rc.
build() {
    local name="$1"
    shift
    while [ "$(jobs -rp | wc -l)" -ge "$max_jobs" ]; do wait -n; done
    ("$@" >"$work/$name.log" 2>&1; echo $? >"$work/$name.rc") &
}

status=0
{
    echo "== $(date -u +%FT%TZ) dtfm GPU run"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    nvcc --version | tail -2
    echo "arch $arch"
    start=$(date +%s)

    # Can CUDA use the GPU at all? (A driver older than the runtime is found here, not after the build.)
    printf '#include "device_present.hpp"\nint main() { return gpu_test::device_present() ? 0 : gpu_test::skipped; }\n' >"$work/probe.cu"
    if nvcc -std=c++20 -Itests/cuda "$work/probe.cu" -o "$work/probe" >"$work/probe.log" 2>&1; then
        "$work/probe"
        rc=$?
        if [ $rc = 1 ] || { [ $rc != 0 ] && [ $gpu_listed = 1 ]; }; then
            echo "== the GPU cannot be used: stopping before the build"
            exit 1
        fi
    else
        echo "BUILD FAILED probe:"; tail -20 "$work/probe.log"; exit 1
    fi

    if [ "${DTFM_GPU_SKIP_BUILD:-0}" != 1 ]; then
        for h in $(cd include && find dtfm -name '*.cuh' | sort); do
            id="header_$(echo "$h" | tr '/.' '__')"
            printf '#include "%s"\n#include "%s"\n' "$h" "$h" >"$work/$id.cu"
            build "$id" nvcc -std=c++20 --expt-relaxed-constexpr -x cu -Iinclude -Werror=all-warnings \
                -Xcompiler=-Wall,-Wextra -c "$work/$id.cu" -o "$work/$id.o"
        done
        for t in tests/cuda/*.cu; do
            name="$(basename "$t" .cu)"
            build "$name" nvcc "${nvcc_flags[@]}" -arch="$arch" "$t" -o "$work/$name" -lcublas
        done
        # The host GPT step beside the device's needs a CBLAS (Debian: libopenblas-dev).
        cblas_h="$(find /usr/include /usr/local/include -name cblas.h 2>/dev/null | head -1)"
        blas_flags=()
        if [ -n "$cblas_h" ] && ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so '; then
            blas_flags=(-DDTFM_BENCH_HOST_GPT=1 -isystem "$(dirname "$cblas_h")" -lopenblas)
        else
            echo "no OpenBLAS (cblas.h and libopenblas.so): the host GPT step and the CPP-system GPT test are left out"
        fi
        build dtfm_bench_gpu nvcc "${nvcc_flags[@]}" -arch="$arch" benchmarks/gpu/bench_gpu.cu -o "$work/dtfm_bench_gpu" \
            -lcublas "${blas_flags[@]}"
        cccl="$(dirname "$(command -v nvcc)")/../include"
        if command -v g++ >/dev/null 2>&1; then
            build test_compress_cpp g++ -std=c++20 -O2 -Wall -Wextra -Wpedantic -Wconversion -Werror \
                -DTHRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_CPP -Iinclude -isystem "$cccl/cccl" -isystem "$cccl" \
                tests/cuda/test_compress_cpp.cpp -o "$work/test_compress_cpp" -L"$cccl/../lib64" -lcudart
            if [ ${#blas_flags[@]} -gt 0 ]; then
                build test_gpt_cpp g++ -std=c++20 -O2 -Wall -Wextra -Wpedantic -Wconversion -Werror \
                    -DTHRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_CPP -Iinclude -isystem "$cccl/cccl" -isystem "$cccl" \
                    -isystem "$(dirname "$cblas_h")" tests/cuda/test_gpt_cpp.cpp -o "$work/test_gpt_cpp" -L"$cccl/../lib64" \
                    -lcudart -lopenblas
            fi
        fi
        wait
        for rc in "$work"/*.rc; do
            name="$(basename "$rc" .rc)"
            if [ "$(cat "$rc")" = 0 ]; then
                echo "built $name"
            else
                echo "BUILD FAILED $name:"
                tail -40 "$work/$name.log"
                status=1
            fi
        done
        echo "== built in $(( $(date +%s) - start )) s"
    fi
    if [ "${DTFM_GPU_BUILD_ONLY:-0}" = 1 ]; then echo "== build only: programs in $work"; exit $status; fi

    for t in test_compress_cpp test_gpt_cpp $(cd tests/cuda && ls *.cu | sed 's/\.cu$//'); do
        if [ ! -x "$work/$t" ]; then
            # The CPP-system tests need g++ (and OpenBLAS); every GPU test must be there.
            case "$t" in *_cpp) continue ;; esac
            echo "FAIL $t (not built: no $work/$t)"; status=1; continue
        fi
        timeout 300 "$work/$t"
        rc=$?
        if [ $rc = 0 ]; then echo "PASS $t"
        elif [ $rc = 77 ] && [ $gpu_listed = 0 ]; then echo "SKIP $t"
        else echo "FAIL $t ($rc)"; status=1; fi
    done
    if [ ! -x "$work/dtfm_bench_gpu" ]; then
        echo "FAIL dtfm_bench_gpu (not built)"; status=1
    else
        timeout 300 "$work/dtfm_bench_gpu" "$out/gpu-bench.json" "$elements"
        rc=$?
        if [ $rc = 77 ] && [ $gpu_listed = 0 ]; then echo "SKIP dtfm_bench_gpu"
        elif [ $rc != 0 ]; then echo "FAIL dtfm_bench_gpu ($rc)"; status=1; fi
    fi
    echo "== done in $(( $(date +%s) - start )) s, status $status"
    exit $status
} 2>&1 | tee "$out/gpu.log"
status=${PIPESTATUS[0]}
[ -n "${DTFM_GPU_BIN:-}" ] || rm -rf "$work"
exit "$status"
