#!/usr/bin/env bash
# Convergence evidence for issue 6: the tiny GPT on 2 stages × 2 replicas, trained twice for the
# same steps on the same data — uncompressed, and with dtfm's compression (AC-SGD delta<quantize<4>>
# activations forward, quantize<8> gradients backward, cocktail data-parallel all-reduce) — then
# plot.py draws both eval-loss curves into docs/img/convergence.png and writes the numbers into the
# convergence section of docs/benchmarks.md.
#   benchmarks/convergence/run.sh [BUILD_DIR=build/release] [STEPS=1000]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/release}
steps=${2:-1000}
out="$build/convergence"
mkdir -p "$out"
common=(--stages 2 --replicas 2 --steps "$steps" --micro-batches 2 --micro-batch 4 --eval-every 50
        --model tiny --gbps 10 --delay-ms 0.1 --seed 1)
# The two runs go side by side (4 threads each): their losses are deterministic, their tokens/s
# share the machine and are not a speed comparison.
pids=()
for mode in dtfm none; do
    echo "== compress $mode: $out/$mode.log" >&2
    "$build/examples/dtfm-train" "${common[@]}" --compress "$mode" --warmup-iterations 20 \
        --report "$out/$mode.json" --metrics "$out/$mode.jsonl" > "$out/$mode.log" 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
/usr/bin/python3 benchmarks/convergence/plot.py "$out/none.json" "$out/dtfm.json" \
    --image docs/img/convergence.png --markdown docs/benchmarks.md \
    --command "benchmarks/convergence/run.sh $build $steps"
