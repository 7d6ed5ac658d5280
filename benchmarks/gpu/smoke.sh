#!/usr/bin/env bash
# On a GPU machine with only the CUDA toolkit (no Catch2, no MPI): compiles every .cuh header and
# the GPU tests with nvcc and runs the tests. Writes its log to $OUT (or ./gpu-smoke) if set.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-gpu-smoke}"
mkdir -p "$out"
work=$(mktemp -d)
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    nvcc --version | tail -1
    for h in $(cd include && find dtfm -name '*.cuh' | sort); do
        printf '#include "%s"\n#include "%s"\n' "$h" "$h" > "$work/h.cu"
        nvcc -std=c++20 --expt-relaxed-constexpr -x cu -Iinclude -c "$work/h.cu" -o "$work/h.o" && echo "header ok: $h"
    done
    status=0
    for t in tests/cuda/*.cu; do
        name=$(basename "$t" .cu)
        nvcc -std=c++20 -O2 --expt-relaxed-constexpr -arch=sm_90 -Iinclude -Itests/cuda "$t" -o "$work/$name"
        if "$work/$name"; then echo "PASS $name"; else echo "FAIL $name"; status=1; fi
    done
    exit $status
} 2>&1 | tee "$out/gpu-smoke.log"
