#!/usr/bin/env bash
# Peer comparison (issue 8, points 4–5): the tiny GPT trained data-parallel on P processes over a
# 100 Mbit/s network, by PyTorch 1.13 DDP over gloo — (a) no hook, (b) fp16_compress_hook,
# (c) PowerSGD rank 4 — and by dtfm-train with cocktail compression over MPI's TCP transport.
# Same model, initial weights, data, optimizer, schedule and steps on both sides (gpt.py reads
# what dtfm-peers-export writes from dtfm's own code; a short check compares the loss curves of
# both on one process before the measured runs). report.py then writes the "Peer comparison
# (PyTorch DDP)" section of docs/benchmarks.md and docs/img/peers.png.
#
#   sudo benchmarks/peers/run.sh [BUILD_DIR=build/release] [STEPS=10] [PROCS="2 4"]
#   env: MICRO_BATCHES=4 MICRO_BATCH=8 (dtfm-train's defaults), PEERS_SKIP_CHECK=1, PEERS_NO_DOCS=1
# Eight runs (3 PyTorch variants + dtfm at 2 and at 4 processes): the default 10 steps take about
# 10 minutes on a quiet 2-core machine; 20 steps took 34 minutes on a loaded one (load average ~10).
#
# Needs root (a network namespace and tc), Open MPI, and Debian's python3-torch and
# python3-matplotlib (apt-get install python3-torch python3-matplotlib); dtfm-train built
# (cmake --build --preset release --target dtfm-train). Not part of CI.
#
# Every run happens inside one network namespace made for it, whose loopback — the only device
# there — is rate-limited to 100 Mbit/s by a tbf qdisc: all traffic of all processes shares that
# one 100 Mbit/s medium (netem is not available, so no added delay). Nothing leaves the namespace.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/release}
steps=${2:-10}
procs=${3:-"2 4"}
microbatches=${MICRO_BATCHES:-4}
micro_batch=${MICRO_BATCH:-8}
py=/usr/bin/python3  # Debian's interpreter, where python3-torch lives
out="$build/peers"
ns="dtfm-peers-$$"
train="$build/examples/dtfm-train"

die() { echo "run.sh: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "needs root (ip netns, tc)"
[[ -x $train ]] || die "$train not found: cmake --preset release && cmake --build --preset release --target dtfm-train"
command -v mpirun >/dev/null || die "mpirun not found (openmpi-bin)"
command -v tc >/dev/null && command -v ip >/dev/null || die "ip and tc not found (iproute2)"
$py -c "import torch, torch.distributed; assert torch.distributed.is_gloo_available()" 2>/dev/null ||
    die "PyTorch with gloo not found for $py: apt-get install python3-torch"
$py -c "import matplotlib" 2>/dev/null || die "matplotlib not found for $py: apt-get install python3-matplotlib"

mkdir -p "$out/results"
rm -f "$out"/results/*.json "$out"/results/*.wire "$out"/check-*.json

echo "== exporting dtfm's corpus samples, sharding order and initial parameters" >&2
g++ -std=c++20 -O2 -Iinclude benchmarks/peers/export_data.cpp -lopenblas -o "$out/dtfm-peers-export"
max_procs=$(tr ' ' '\n' <<<"$procs" | sort -n | tail -1)
mkdir -p "$out/data"
# Seed 1 and 4096 training samples, as dtfm-train's defaults; 2 held-out micro-batches per process.
"$out/dtfm-peers-export" "$out/data" 1 4096 $((max_procs * 2 * micro_batch))

ip netns add "$ns"
cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
ip -n "$ns" link set lo up
tc -n "$ns" qdisc add dev lo root tbf rate 100mbit burst 256kb latency 100ms
in_ns() { ip netns exec "$ns" "$@"; }
wire_bytes() { tc -n "$ns" -s qdisc show dev lo | awk '/Sent/ {print $2; exit}'; }

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 GLOO_SOCKET_IFNAME=lo
mpi=(mpirun --oversubscribe --mca btl tcp,self --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo
     -x OPENBLAS_NUM_THREADS)
# dtfm-train always wraps its transport in throttled<>: make that emulation free, so only the
# kernel's 100 Mbit/s limit applies, as it does to PyTorch.
unthrottled=(--gbps 10000 --delay-ms 0 --time-scale 1e-6)
common=(--steps "$steps" --micro-batches "$microbatches" --micro-batch "$micro_batch" --seed 1)
port=29500

if [[ -z ${PEERS_SKIP_CHECK:-} ]]; then
    echo "== check: the same model, data and optimizer (1 process, 3 steps, both sides)" >&2
    in_ns "$train" --stages 1 --replicas 1 --steps 3 --micro-batches 2 --micro-batch "$micro_batch" --seed 1 \
        --compress none --eval-every 0 "${unthrottled[@]}" --report "$out/results/check-dtfm.json" >/dev/null
    in_ns $py benchmarks/peers/gpt.py --data "$out/data" --procs 1 --variant none --steps 3 --micro-batches 2 \
        --micro-batch "$micro_batch" --port $((port++)) --out "$out/results/check-torch.json" >/dev/null
    $py - "$out/results/check-dtfm.json" "$out/results/check-torch.json" <<'EOF'
import json, sys
d, t = (json.load(open(p)) for p in sys.argv[1:])
a = [h["loss"] for h in d["history"]] + [d["final_eval_loss"]]
b = [h["loss"] for h in t["history"]] + [t["final_eval_loss"]]
worst = max(abs(x - y) for x, y in zip(a, b))
print("  dtfm-train:", " ".join(f"{x:.5f}" for x in a), file=sys.stderr)
print("  gpt.py:    ", " ".join(f"{x:.5f}" for x in b), file=sys.stderr)
if worst > 1e-3:
    sys.exit(f"run.sh: the PyTorch peer does not train like dtfm-train (largest loss difference {worst:.2e})")
print(f"  same losses within {worst:.1e}", file=sys.stderr)
EOF
fi

# One run: NAME COMMAND…; a failed run is reported and left out of the table, the others go on.
failed=()
measure() {
    local name=$1 before
    shift
    before=$(wire_bytes)
    if in_ns "$@"; then
        echo $(($(wire_bytes) - before)) >"$out/results/$name.wire"
    else
        echo "run.sh: $name failed; left out of the report" >&2
        rm -f "$out/results/$name.json"
        failed+=("$name")
    fi
}

for p in $procs; do
    for variant in none fp16 powersgd; do
        echo "== PyTorch DDP, $p processes, hook: $variant" >&2
        measure "torch-$variant-$p" $py benchmarks/peers/gpt.py --data "$out/data" --procs "$p" --variant "$variant" \
            "${common[@]}" --port $((port++)) --out "$out/results/torch-$variant-$p.json" --progress
    done
    echo "== dtfm-train, $p processes, cocktail data-parallel over MPI TCP" >&2
    measure "dtfm-cocktail-$p" "${mpi[@]}" -n "$p" "$train" --stages 1 --replicas "$p" --transport mpi --compress dtfm \
        --eval-every 0 "${common[@]}" "${unthrottled[@]}" --report "$out/results/dtfm-cocktail-$p.json"
done

if [[ -z ${PEERS_NO_DOCS:-} ]]; then
    $py benchmarks/peers/report.py "$out/results" --markdown docs/benchmarks.md --image docs/img/peers.png \
        --command "benchmarks/peers/run.sh $build $steps${3:+ \"$procs\"}"
else
    $py benchmarks/peers/report.py "$out/results"
fi
(( ${#failed[@]} == 0 )) || { echo "run.sh: failed runs: ${failed[*]}" >&2; exit 1; }
