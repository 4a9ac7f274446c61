#!/usr/bin/env bash
# Packages of the benchmark harness (bench/run.sh), installed idempotently as root. Not part of
# scripts/setup.sh or CI: benchmarks never run in the test suite.
set -euo pipefail
packages=(clang llvm gcc libc6-dev libbpf-dev libxdp-dev bpftool xdp-tools nftables iproute2 ethtool
          iputils-ping python3 linux-perf gnuplot-nox)
"$(dirname "$0")/../scripts/install-packages.sh" "bench setup" "${packages[@]}"
