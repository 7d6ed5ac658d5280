#!/usr/bin/env bash
# Issue 8's evidence: runs dtfm-demo on its embedded defaults (extra arguments are passed through),
# then report.py writes the "Flagship demo" section of docs/benchmarks.md and copies the chart to
# docs/img/demo.png.
#   benchmarks/demo/run.sh [BUILD_DIR=build/release] [dtfm-demo flags…]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/release}
shift || true
out="$build/demo"
mkdir -p "$out"
"$build/examples/dtfm-demo" --report "$out/demo-report.json" --chart "$out/demo-chart.png" "$@" | tee "$out/demo.log"
cp "$out/demo-chart.png" docs/img/demo.png
/usr/bin/python3 benchmarks/demo/report.py "$out/demo-report.json" --markdown docs/benchmarks.md \
    --command "benchmarks/demo/run.sh $build${*:+ $*}"
