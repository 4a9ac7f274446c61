#!/usr/bin/env bash
# Builds the XDP program: bpf/sluice_xdp.c -> bpf/build/sluice_xdp.bpf.o (git-ignored).
# SluiceDataplane finds the object at run time through SLUICE_BPF_OBJECT, then next to the
# executable, then at this path in the source tree (see XDPProgram.swift).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$here/build"
# UAPI headers include <asm/types.h>, which Debian keeps under the multiarch directory.
multiarch="$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")"
"${CLANG:-clang}" -O2 -g -target bpf -Wall -Werror \
    -I"/usr/include/$multiarch" -I"$here" \
    -c "$here/sluice_xdp.c" -o "$here/build/sluice_xdp.bpf.o"
echo "built $here/build/sluice_xdp.bpf.o"
