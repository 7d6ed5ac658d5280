#!/usr/bin/env bash
# Run every dtfm_bench_* program in a build folder, then regenerate docs/benchmarks.md and
# docs/img/ from their JSON. Usage: benchmarks/run.sh [BUILD_DIR [BENCHMARK_FLAGS…]]
# BUILD_DIR defaults to build/release; BENCHMARK_FLAGS go to every program.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$repo/build/release}"
shift $(( $# > 0 ? 1 : 0 ))

if [[ ! -d "$build" ]]; then
    echo "run.sh: no build folder $build; configure and build first (cmake --preset release)" >&2
    exit 1
fi

mapfile -t programs < <(find "$build" -type f -perm -u+x -name 'dtfm_bench_*' | sort)
if (( ${#programs[@]} == 0 )); then
    echo "run.sh: no dtfm_bench_* programs under $build; build with DTFM_BUILD_BENCHMARKS=ON" >&2
    exit 1
fi
# Each program's JSON and docs section are named after it, so two of one name would clash.
duplicates="$(printf '%s\n' "${programs[@]##*/}" | sort | uniq -d)"
if [[ -n "$duplicates" ]]; then
    echo "run.sh: more than one program named $duplicates under $build; pass the build folder itself" >&2
    exit 1
fi

# Programs that measure between MPI ranks run under mpiexec (as root, Open MPI must be told),
# once per rank count listed; a program run at several counts writes <name>-n<ranks>.json and
# gets one section per count (it reports its count as the "mpi_ranks" context).
declare -A mpi_ranks=([dtfm_bench_transport]="2" [dtfm_bench_collective]="2 4")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

mkdir -p "$build/bench"
results=()
for program in "${programs[@]}"; do
    name="$(basename "$program")"
    read -ra counts <<< "${mpi_ranks[$name]:-0}"
    for ranks in "${counts[@]}"; do
        launch=()
        out="$build/bench/$name.json"
        if (( ranks > 0 )); then
            launch=(mpiexec -n "$ranks")
            if (( ${#counts[@]} > 1 )); then out="$build/bench/$name-n$ranks.json"; fi
        fi
        echo "== ${launch[*]} $name" >&2
        # Three repetitions, medians reported: one slow repetition on a shared machine moves nothing.
        "${launch[@]}" "$program" --benchmark_out="$out" --benchmark_out_format=json \
            --benchmark_repetitions=3 --benchmark_report_aggregates_only=true "$@"
        results+=("$out")
    done
done

# Debian's python3-matplotlib lives in the system Python, which a pyenv or venv may shadow.
python="${PYTHON:-python3}"
if ! "$python" -c 'import matplotlib' 2>/dev/null && [[ -x /usr/bin/python3 ]]; then
    python=/usr/bin/python3
fi
"$python" "$repo/benchmarks/report.py" --out "$repo/docs/benchmarks.md" --img "$repo/docs/img" "${results[@]}"
echo "run.sh: wrote $repo/docs/benchmarks.md and $repo/docs/img/" >&2
