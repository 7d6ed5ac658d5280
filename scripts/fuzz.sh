#!/usr/bin/env bash
# Runs every libFuzzer target (built by the asan preset) for at least RUNS executions, starting
# from the seed corpus, and prints a Markdown table: executions, edge coverage ("cov") and
# features ("ft") reached, corpus size, seconds. Exits non-zero if a target finds a crash.
#   scripts/fuzz.sh [BUILD_DIR=build/asan] [RUNS=1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/asan}
runs=${2:-1000000}
bin="$build/tests/fuzz/bin"
if [[ ! -d "$bin" ]]; then
    echo "no fuzz targets in $bin: run 'cmake --preset asan && cmake --build --preset asan' first" >&2
    exit 2
fi
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
"$build/tests/fuzz/dtfm_fuzz_seeds" "$seeds" >/dev/null

echo "| target | executions | cov | ft | corpus | seconds |"
echo "|---|---:|---:|---:|---:|---:|"
status=0
for target in "$bin"/dtfm_fuzz_*; do
    [[ "$target" == *.d ]] && continue
    name=$(basename "$target")
    work=$(mktemp -d)
    [[ -d "$seeds/$name" ]] && cp "$seeds/$name"/* "$work"/ 2>/dev/null || true
    log=$(mktemp)
    start=$(date +%s)
    if ! "$target" -runs="$runs" -print_final_stats=1 -artifact_prefix="$work/" "$work" >"$log" 2>&1; then
        echo "$name FAILED, log in $log" >&2
        status=1
    fi
    seconds=$(( $(date +%s) - start ))
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | awk '{print $2}' | tail -1)
    ft=$(grep -o 'ft: [0-9]*' "$log" | awk '{print $2}' | tail -1)
    files=$(find "$work" -maxdepth 1 -type f | wc -l)
    echo "| \`$name\` | ${execs:-?} | ${cov:-?} | ${ft:-?} | $files | $seconds |"
    [[ $status -eq 0 ]] && rm -f "$log"
    rm -rf "$work"
done
exit $status
