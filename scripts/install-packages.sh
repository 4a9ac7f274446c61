#!/usr/bin/env bash
# Installs the Debian packages named after the label that are not installed yet, as root; says which
# (or that all are present), prefixed with the label. The one implementation behind scripts/setup.sh,
# bench/setup.sh and bench/dns/setup.sh.
# Usage: scripts/install-packages.sh LABEL PACKAGE...
set -euo pipefail
label=$1
shift
missing=()
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "$label: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "$label: all packages present"
fi
