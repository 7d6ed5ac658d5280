#!/usr/bin/env bash
# The threads-as-ranks tests — the in-process transport, every collective, the data-parallel,
# pipeline and hybrid strategies, the trainer — under ThreadSanitizer (the tsan workflow), for
# changes to threaded code. Not part of scripts/test.sh, to keep CI within 30 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
. scripts/env.sh
cmake --workflow --preset tsan
