#!/usr/bin/env bash
# Packages of the benchmark harness (bench/run.sh), installed idempotently as root. Not part of
# scripts/setup.sh or CI: benchmarks never run in the test suite.
set -euo pipefail
packages=(clang llvm gcc libc6-dev libbpf-dev libxdp-dev bpftool xdp-tools nftables iproute2 ethtool
          iputils-ping python3 linux-perf gnuplot-nox)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "bench setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "bench setup: all packages present"
fi
