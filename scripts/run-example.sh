#!/usr/bin/env bash
# Builds and runs dtfm's flagship example, dtfm-demo, on its embedded defaults (arguments are
# passed through): the tiny GPT trained over fast links, slow links, and slow links with dtfm;
# it writes demo-report.json and demo-chart.png in the current folder.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
. scripts/env.sh

cmake --preset release >/dev/null
cmake --build --preset release --target dtfm-demo
exec build/release/examples/dtfm-demo "$@"
