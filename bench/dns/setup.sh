#!/usr/bin/env bash
# Installs what the DNS proxy benchmark (bench/dns, dns-bench) needs on Debian 12, as root: dnsperf
# (the load generator, from Debian's packages), nsd (the upstream it is compared against) and tcpdump
# (`--split-latency` captures the half-load run to tell the proxy's share of the latency from the upstream's).
# Idempotent; deliberately not part of scripts/setup.sh, so the CI test path never installs it.
set -euo pipefail
"$(dirname "$0")/../../scripts/install-packages.sh" bench/dns/setup.sh dnsperf nsd knot-dnsutils tcpdump
# The nsd package starts its own daemon on port 53; the benchmark runs its own instance.
systemctl disable --now nsd >/dev/null 2>&1 || true
