#!/usr/bin/env bash
# Builds and runs dtfm's main example on its embedded defaults (arguments are passed through).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
. scripts/env.sh

cmake --preset release >/dev/null
cmake --build --preset release --target dtfm-ring
exec build/release/examples/dtfm-ring "$@"
