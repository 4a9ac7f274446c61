#!/usr/bin/env bash
# Sets up a Debian 12 machine (system packages, the XDP program) and runs the whole test suite:
# unit tests everywhere, and as root the integration tests in network namespaces. `.ci/run` calls
# exactly this. Debug builds: benchmarks are not part of it (see docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export PATH=/opt/swift/usr/bin:$PATH
bash bpf/build.sh

if [ "$(id -u)" != 0 ]; then
    echo "NOTE: not root: the namespace, XDP and AF_XDP integration tests will be SKIPPED (each says why)."
fi

# Build once, tests included: several tests run the built `sluice` binary.
swift build --build-tests
# One test at a time: on a 2-core machine, parallel tests starve each other's timers (the DNS
# timeout and lab tests measure real time) and the namespace tests share the kernel.
swift test --skip-build --no-parallel "$@"
