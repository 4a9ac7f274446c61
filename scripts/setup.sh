#!/usr/bin/env bash
# Installs everything Sluice needs to build, test and run on Debian 12 (bookworm), as root.
# Idempotent: packages already present are skipped, so CI and fresh machines run the same script.
set -euo pipefail

packages=(
    # build: the XDP program (clang, BPF headers) and the AF_XDP user side (libxdp, libbpf, libelf)
    clang llvm libbpf-dev libxdp-dev libelf-dev zlib1g-dev pkg-config make gcc libc6-dev
    # system libraries the Swift packages link: SQLite for the store
    libsqlite3-dev
    # the lab and the integration tests: namespaces, veth, nftables, DNS/HTTP/TLS peers, probes
    iproute2 nftables ethtool iputils-ping curl openssl nsd knot-dnsutils python3 procps psmisc
    # looking inside: BPF programs and maps
    bpftool xdp-tools
)

"$(dirname "$0")/install-packages.sh" setup "${packages[@]}"

if ! command -v swift >/dev/null 2>&1; then
    if [ -x /opt/swift/usr/bin/swift ]; then
        export PATH=/opt/swift/usr/bin:$PATH
    else
        echo "setup: no Swift toolchain found; install Swift 6.x (https://www.swift.org/install/linux/) and re-run" >&2
        exit 1
    fi
fi
# The nsd package starts its own daemon on port 53; the lab runs its own instance in a namespace.
systemctl disable --now nsd >/dev/null 2>&1 || true
echo "setup: $(swift --version 2>/dev/null | head -1)"
