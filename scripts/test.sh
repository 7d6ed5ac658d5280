#!/usr/bin/env bash
# Runs every dtfm test: installs missing packages, configures and builds the release preset, runs
# all of CTest (unit, mpi, package, headers, gpu), then the unit and MPI tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer (the asan workflow), and the threads-as-ranks tests
# (transport, collectives, strategies, trainer) under ThreadSanitizer (the tsan workflow). Exits
# non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
. scripts/env.sh

cmake --preset release
cmake --build --preset release
ctest --preset release

cmake --workflow --preset asan
cmake --workflow --preset tsan
