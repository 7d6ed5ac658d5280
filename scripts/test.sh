#!/usr/bin/env bash
# Runs every dtfm test: installs missing packages, configures and builds the release preset, runs
# all of CTest (unit, mpi, package, headers, gpu), then the unit and MPI tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer (the asan workflow). Exits non-zero on any failure.
# The ThreadSanitizer run of the threads-as-ranks tests is scripts/test-threads.sh (left out here
# to keep CI within 30 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
. scripts/env.sh

cmake --preset release
cmake --build --preset release
ctest --preset release

cmake --workflow --preset asan
