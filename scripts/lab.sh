#!/usr/bin/env bash
# Sets up a Debian 12 machine, builds Sluice and starts the lab: network namespaces with a client
# network, the gateway and an upstream (HTTP, TLS, DNS), the gateway running an example policy in
# audit mode. Prints where the API is and how to use it. `sluice lab down` removes it all.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export PATH=/opt/swift/usr/bin:$PATH
bash bpf/build.sh
swift build --product sluice
exec .build/debug/sluice lab up "$@"
