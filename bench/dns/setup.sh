#!/usr/bin/env bash
# Installs what the DNS proxy benchmark (bench/dns, dns-bench) needs on Debian 12, as root: dnsperf
# (the load generator, from Debian's packages) and nsd (the upstream it is compared against).
# Idempotent; deliberately not part of scripts/setup.sh, so the CI test path never installs it.
set -euo pipefail
missing=()
for p in dnsperf nsd knot-dnsutils; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "bench/dns/setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "bench/dns/setup.sh: dnsperf, nsd and kdig present"
fi
# The nsd package starts its own daemon on port 53; the benchmark runs its own instance.
systemctl disable --now nsd >/dev/null 2>&1 || true
