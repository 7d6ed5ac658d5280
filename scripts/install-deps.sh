#!/usr/bin/env bash
# Installs the Debian 12 packages dtfm's build, tests, examples and benchmarks need. Idempotent:
# a no-op (no apt-get at all) when every package is already installed.
set -euo pipefail

packages=(
    g++ cmake ninja-build make git pkg-config
    clang-14 libclang-rt-14-dev
    catch2 libbenchmark-dev
    libopenmpi-dev openmpi-bin
    libopenblas-dev nlohmann-json3-dev libcli11-dev libxxhash-dev zlib1g-dev
    python3 python3-matplotlib
    iproute2
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
