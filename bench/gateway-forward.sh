#!/usr/bin/env bash
# Forwarding rate of the real gateway: client ns ──veth (2 queues)──► the Dataplane (AF_XDP, release
# build of `forward-bench gateway`: the same workers as `sluice run`, without the management
# plane) ──veth (2 queues)──► upstream ns, where `xdp-bench drop` counts and drops what arrives.
# The generator is bench/udpgen.c (sendmmsg, 64-byte frames, N flows). Prints the sink's rate,
# the generator's rate and the gateway's CPU cycles per forwarded packet (process CPU time ×
# clock rate / packets). Needs root. Everything it creates is removed on exit.
# Flow offload (issue 6) is on by default, as in `sluice run`; `--no-offload` measures the pure
# AF_XDP path. Further arguments after FLOWS go to `forward-bench gateway`.
# GEN=live uses bench/livegen (BPF_PROG_RUN live frames, far faster than sendmmsg; FLOWS must be a
# power of two) instead of udpgen, and an XDP_DROP program as the sink.
#   swift build -c release --product forward-bench && bench/gateway-forward.sh [SECONDS] [FLOWS] [--busy-poll] [--no-offload]
set -euo pipefail
seconds="${1:-10}"; flows="${2:-16}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"; root="$(dirname "$here")"
mode="${*:3}"
gateway="$root/.build/release/forward-bench"
[ -x "$gateway" ] || { echo "no $gateway: swift build -c release --product forward-bench" >&2; exit 1; }
C=slbench-c; G=slbench-g; U=slbench-u; work="$(mktemp -d)"
cleanup() {
    exec 3>&- 2>/dev/null || true
    [ -n "${gateway_pid:-}" ] && wait "$gateway_pid" 2>/dev/null || true
    [ -n "${sink_pid:-}" ] && kill "$sink_pid" 2>/dev/null || true
    for n in $C $G $U; do ip netns del $n 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
for n in $C $G $U; do ip netns del $n 2>/dev/null || true; ip netns add $n; ip -n $n link set lo up; done
ip -n $C link add c0 numtxqueues 2 numrxqueues 2 type veth peer name gin numtxqueues 2 numrxqueues 2 netns $G
ip -n $U link add u0 numtxqueues 2 numrxqueues 2 type veth peer name gout numtxqueues 2 numrxqueues 2 netns $G
cfg() { ip -n "$1" addr add "$3" dev "$2"; ip -n "$1" link set "$2" up; }
cfg $C c0 10.88.1.2/24; cfg $G gin 10.88.1.1/24; cfg $G gout 10.88.2.1/24; cfg $U u0 10.88.2.2/24
# Hosts finish their checksums: AF_XDP forwards bytes as they are (veth leaves them partial).
ip netns exec $C ethtool -K c0 tx off >/dev/null; ip netns exec $U ethtool -K u0 tx off >/dev/null
# GRO: frames the XDP flow offload redirects into a veth vanish unless its peer has an XDP program
# or GRO (`xdp-bench drop` cannot attach here: no bpffs inside `ip netns exec`).
ip netns exec $C ethtool -K c0 gro on >/dev/null; ip netns exec $U ethtool -K u0 gro on >/dev/null
ip -n $C route add default via 10.88.1.1; ip -n $U route add 10.88.1.0/24 via 10.88.2.1
cat > "$work/policy.json" <<JSON
{"mode": "enforce", "name": "bench", "policy": {"default_policy": "deny", "source_groups": [
  {"id": "clients", "sources": {"cidrs": ["10.88.1.0/24"]}, "rules": [
    {"id": "flood", "action": "allow", "match": {"proto": "udp", "dst_ports": ["9000-9999"]}},
    {"id": "ping", "action": "allow", "match": {"proto": "icmp"}}]}]}}
JSON
gcc -O2 -o "$work/udpgen" "$here/udpgen.c"
if [ "${GEN:-udp}" = live ]; then
    clang -O2 -g -target bpf -I"/usr/include/$(gcc -print-multiarch)" -c "$here/livegen/livegen.bpf.c" \
        -o "$work/livegen.bpf.o"
    gcc -O2 -o "$work/livegen" "$here/livegen/livegen.c" -lbpf
fi
mkfifo "$work/control"
ip netns exec $G "$gateway" gateway --inside gin --outside gout --policy "$work/policy.json" --queues 2 $mode \
    <"$work/control" >"$work/gateway.log" 2>&1 &
gateway_pid=$!
exec 3>"$work/control"   # the gateway runs until this closes
for _ in $(seq 50); do grep -q "^ready" "$work/gateway.log" && break; sleep 0.2; done
if [ "${GEN:-udp}" = live ]; then
    # xdp-bench cannot attach inside `ip netns exec` here (no bpffs): drop with our own program.
    ip -n $U link set dev u0 xdpdrv object "$work/livegen.bpf.o" program livegen_drop
else
    ip netns exec $U xdp-bench drop u0 >"$work/sink.log" 2>&1 &
    sink_pid=$!
fi
ip netns exec $C ping -c 2 -W 1 10.88.2.2 >/dev/null || true   # neighbours resolved before the flood
sleep 1
sink_packets() {
    ip -n $U -s -j link show u0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])'
}
before=$(sink_packets)
pid=$(pgrep -f -n "forward-bench gateway --inside gin")
cpu_before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
if [ "${GEN:-udp}" = live ]; then
    sent=$(ip netns exec $C "$work/livegen" c0 "$(ip netns exec $C cat /sys/class/net/c0/address)" \
        "$(ip netns exec $G cat /sys/class/net/gin/address)" 10.88.1.2 10.88.2.2 9000 "$flows" "$seconds" \
        "$work/livegen.bpf.o")
else
    sent=$(ip netns exec $C "$work/udpgen" 10.88.2.2 9000 "$flows" "$seconds")
fi
after=$(sink_packets)
cpu_after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
hz=$(getconf CLK_TCK); mhz=$(awk '/cpu MHz/ {print $4; exit}' /proc/cpuinfo)
python3 - "$sent" "$before" "$after" "$cpu_before" "$cpu_after" "$hz" "$mhz" "$seconds" <<'PY'
import sys
sent, before, after, cpu0, cpu1, hz, mhz, seconds = map(float, sys.argv[1:])
received = after - before
cpu = (cpu1 - cpu0) / hz
print(f"generator: {sent / seconds / 1e6:.3f} Mpps offered, sink: {received / seconds / 1e6:.3f} Mpps forwarded "
      f"({received / max(sent, 1) * 100:.1f}%)")
cycles = cpu * mhz * 1e6 / max(received, 1)
print(f"gateway CPU: {cpu:.1f} s over {seconds:.0f} s = {cycles:.0f} cycles per forwarded packet "
      f"(all threads, incl. idle polling)")
PY
exec 3>&-
wait "$gateway_pid" || true
gateway_pid=
echo "gateway counters:"
grep -E "^(allowed|denied|dropped|flows|tx_ring|fill_ring|transmitted|received|offload)" "$work/gateway.log" | sed 's/^/  /'
