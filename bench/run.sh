#!/usr/bin/env bash
# The benchmark harness of the performance issue: one command, one topology, one generator, every
# system measured the same way in the same run. Never part of the test suite. Needs root.
#
#   client ns: c0 ──veth──► gateway ns: gin  [system under test]  gout ──veth──► upstream ns: u0 (sink)
#
# Generator (--gen, default xdp): bench/xdp/xdpgen (xdp: XDP live frames, XDP_TX into c0) or bench/xdp/xskgen
# (afxdp: an AF_XDP transmit socket on c0, copy mode), the same frames and flows, on --gen-cpus. Sink: xdp_sink on u0
# counts and drops the flood (UDP/TCP) and passes ICMP, so a ping-style probe (client → upstream,
# reply through the gateway) measures latency under load. Systems (--systems, default all):
#   ceiling        XDP_DROP on gin (the ceiling: nothing forwards faster than the generator → drop)
#   xskfwd         the minimal C AF_XDP forwarding loop (bench/xdp/xskfwd.c), the AF_XDP baseline
#   kernel         kernel forwarding, no rules
#   nft-naive-N    kernel forwarding + nftables, the policy as one rule per rule (bench/nft-rules)
#   nft-best-N     kernel forwarding + nftables, best encoding (verdict maps, concatenated interval sets)
#   sluice-N       `forward-bench gateway` (the real Dataplane workers), --no-offload where it exists
#   sluice-offload-N  the same with XDP flow offload (reported "not available" where the build lacks it)
# Extras (--extras, default all that can run): fps (new flows per second, SYN flood of unique tuples),
# memory (RSS per 1,000,000 flow-table entries), scaling (1/2/4 queues), swap (policy swap under load
# through the API: needs the release `sluice`).
# Each figure: median of --repeats runs (default 5) with min and max. Results: OUT/results.csv,
# OUT/summary.md, OUT/bench-pps.png (gnuplot), OUT/extras.md.
#
#   bench/setup.sh                                    # packages (idempotent)
#   swift build -c release --product forward-bench --product nft-rules
#   sudo bench/run.sh [--seconds 10] [--repeats 5] [--rules 100,1000,10000,100000] [--cpus 0]
#        [--gen-cpus 1] [--queues 1] [--frames 64|imix] [--family 4|6|mix] [--proto udp|tcp]
#        [--flows 4096] [--systems LIST] [--extras LIST|none] [--out DIR] [--nice -19] [--nft-rules LIST]
#        [--gen xdp|afxdp]
# --rate PPS: offer a fixed rate instead of all the generator can (loss-free capacity checks).
# --nft-rules: the rule counts nftables is measured at (default: --rules); each `nft -f` load time
# goes to OUT/nft-load.csv (100,000 rules: about 30-40 s on a 2-vCPU VM).
# --nice: generator and gateways run at this nice level, so that builds sharing the machine take
# less of the measured CPUs (the kernel's forwarding work runs in the generator's softirq context).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"; root="$(dirname "$here")"
seconds=10; repeats=5; rules=100,1000,10000,100000; cpus=0; gen_cpus=1; queues=1; frames=64; family=4
proto=udp; flows=4096; rate=; nft_counts=; systems=all; extras=all; out="$root/.build/bench-results"; nice=-19
gen=xdp
while (($#)); do
    case "$1" in
        --seconds) seconds="$2";; --repeats) repeats="$2";; --rules) rules="$2";; --cpus) cpus="$2";;
        --gen-cpus) gen_cpus="$2";; --queues) queues="$2";; --frames) frames="$2";; --family) family="$2";;
        --proto) proto="$2";; --flows) flows="$2";; --systems) systems="$2";; --extras) extras="$2";;
        --out) out="$2";; --nice) nice="$2";; --nft-rules) nft_counts="$2";; --rate) rate="$2";;
        --gen) gen="$2";;
        -h|--help) sed -n 2,34p "$0"; exit 0;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2;;
    esac
    shift 2
done
case "$gen" in xdp) gen_bin=xdpgen;; afxdp) gen_bin=xskgen;; *) echo "run.sh: --gen xdp|afxdp, not $gen" >&2; exit 2;; esac
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (namespaces, XDP)" >&2; exit 1; }
mkdir -p "$out"; out="$(cd "$out" && pwd)"
work="$(mktemp -d /tmp/sluice-bench.XXXXXX)"
C=sb-client; G=sb-gateway; U=sb-upstream
gateway_pid=; gateway_fifo_open=
log() { echo "[$(date +%T)] $*" >&2; }

cleanup() {
    stop_gateway || true
    for n in $C $G $U; do ip netns del $n 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# ---------------------------------------------------------------- build the C parts (never in CI)
multiarch="$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")"
clang -O2 -g -target bpf -Wall -I"/usr/include/$multiarch" -c "$here/xdp/bench_kern.c" -o "$work/bench_kern.o"
gcc -O2 -Wall -o "$work/xdpgen" "$here/xdp/xdpgen.c" -lbpf -lpthread
gcc -O2 -Wall -o "$work/xskgen" "$here/xdp/xskgen.c" -lxdp -lbpf -lpthread
gcc -O2 -Wall -o "$work/xskfwd" "$here/xdp/xskfwd.c" -lxdp -lbpf -lpthread
obj="$work/bench_kern.o"
[ -f "$root/bpf/build/sluice_xdp.bpf.o" ] || "$root/bpf/build.sh" >/dev/null   # Sluice's own XDP program
forward_bench="$root/.build/release/forward-bench"; nft_rules="$root/.build/release/nft-rules"
sluice="$root/.build/release/sluice"
[ -x "$forward_bench" ] || log "no $forward_bench: Sluice systems not available (swift build -c release --product forward-bench)"
[ -x "$nft_rules" ] || { echo "run.sh: no $nft_rules: swift build -c release --product nft-rules" >&2; exit 1; }
# Feature detection: a flag the build does not know is reported as "not available", never faked.
offload_flag=no
# The usage line (exit 2) names --no-offload when the build has offload; read it whole first, since
# under pipefail the usage's exit status would fail a pipeline into grep.
usage_line="$([ -x "$forward_bench" ] && "$forward_bench" gateway 2>&1 || true)"
if [[ "$usage_line" == *--no-offload* ]]; then offload_flag=yes; fi
mhz=$(awk '/cpu MHz/ {print $4; exit}' /proc/cpuinfo)
IFS=, read -r -a rule_counts <<<"$rules"
nft_counts="${nft_counts:-$rules}"

# ---------------------------------------------------------------- topology
topology() {  # topology QUEUES
    local q="$1"
    for n in $C $G $U; do ip netns del $n 2>/dev/null || true; ip netns add $n; ip -n $n link set lo up; done
    # xg0: an idle veth the generator holds its program on (xdpgen --hold-dev).
    ip -n $C link add xg0 type veth peer name xg1
    ip -n $C link add c0 numtxqueues "$q" numrxqueues "$q" type veth peer name gin numtxqueues "$q" numrxqueues "$q" netns $G
    ip -n $U link add u0 numtxqueues "$q" numrxqueues "$q" type veth peer name gout numtxqueues "$q" numrxqueues "$q" netns $G
    ip -n $C addr add 198.18.0.2/16 dev c0; ip -n $C addr add fd00:18::2/64 dev c0 nodad
    ip -n $G addr add 198.18.0.1/16 dev gin; ip -n $G addr add fd00:18::1/64 dev gin nodad
    ip -n $G addr add 198.19.0.1/16 dev gout; ip -n $G addr add fd00:19::1/64 dev gout nodad
    ip -n $U addr add 198.19.0.2/16 dev u0; ip -n $U addr add fd00:19::2/64 dev u0 nodad
    for x in "$C c0" "$G gin" "$G gout" "$U u0"; do set -- $x; ip -n "$1" link set "$2" up; done
    ip -n $C route add default via 198.18.0.1; ip -n $C -6 route add default via fd00:18::1
    ip -n $U route add 198.18.0.0/16 via 198.19.0.1; ip -n $U -6 route add fd00:18::/64 via fd00:19::1
    ip netns exec $G sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    # Frames XDP_TX'd into c0 arrive on gin only if gin runs XDP or has GRO (NAPI) on.
    ip netns exec $G ethtool -K gin gro on >/dev/null
    # Hosts finish their checksums: AF_XDP forwards bytes as they are.
    ip netns exec $C ethtool -K c0 tx off >/dev/null; ip netns exec $U ethtool -K u0 tx off >/dev/null
    ip -n $U link set dev u0 xdpdrv obj "$obj" sec xdp program xdp_sink
    # Neighbours resolved before any flood (Sluice reads them from the kernel's tables).
    ip netns exec $C ping -c 1 -W 1 198.19.0.2 >/dev/null || true
    ip netns exec $C ping -6 -c 1 -W 1 fd00:19::2 >/dev/null 2>&1 || true
    ip netns exec $G ping -c 1 -W 1 198.19.0.2 >/dev/null || true
    ip netns exec $G ping -6 -c 1 -W 1 fd00:19::2 >/dev/null 2>&1 || true
    gin_mac=$(ip -n $G -j link show gin | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
    u0_mac=$(ip -n $U -j link show u0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
}

sink_count() { python3 "$here/xdp/xdpcount.py" $U u0; }

generate() {  # generate SECONDS [extra generator args...]: prints the generator's line (--gen)
    local s="$1"; shift
    local xdp_only=(--obj "$obj" --hold-dev xg0); [ "$gen" = xdp ] || xdp_only=()
    ip netns exec $C nice -n "$nice" "$work/$gen_bin" --dev c0 --dst-mac "$gin_mac" --src4 198.18.0.2 --dst4 198.19.0.2 \
        --src6 fd00:18::2 --dst6 fd00:19::2 --family "$family" --proto "$proto" --size "$frames" \
        --flows "$flows" --seconds "$s" --cpus "$gen_cpus" "${xdp_only[@]}" "$@"
}

# ---------------------------------------------------------------- gateways
start_gateway() {  # start_gateway LOGFILE COMMAND...: runs in the gateway ns until stop_gateway
    local logfile="$1"; shift
    rm -f "$work/control"; mkfifo "$work/control"
    ip netns exec $G nice -n "$nice" "$@" <"$work/control" >"$logfile" 2>&1 &
    gateway_pid=$!
    exec 3>"$work/control"; gateway_fifo_open=1
    for _ in $(seq 150); do
        grep -q "^ready" "$logfile" && break
        kill -0 "$gateway_pid" 2>/dev/null || break
        sleep 0.2
    done
    if ! grep -q "^ready" "$logfile"; then log "gateway did not start: $(tail -3 "$logfile")"; stop_gateway; return 1; fi
    # The process that does the work (ip netns exec → nice → the binary, each exec'ing the next).
    worker_pid=$(pgrep -P "$gateway_pid" | head -1); worker_pid=${worker_pid:-$gateway_pid}
}

stop_gateway() {
    if [ -n "$gateway_fifo_open" ]; then exec 3>&-; gateway_fifo_open=; fi
    if [ -n "$gateway_pid" ]; then
        for _ in $(seq 100); do kill -0 "$gateway_pid" 2>/dev/null || break; sleep 0.1; done
        kill "$gateway_pid" 2>/dev/null || true; wait "$gateway_pid" 2>/dev/null || true
        gateway_pid=
    fi
}

reset_gateway() {
    ip netns exec $G nft flush ruleset 2>/dev/null || true
    ip -n $G link set dev gin xdp off 2>/dev/null || true
}

# ---------------------------------------------------------------- one measurement
csv="$out/results.csv"
[ -f "$csv" ] || echo "system,rules,repeat,sent,received,seconds,cpu_ms,mhz,p50_us,p99_us,probes_sent,probes_received" >"$csv"

measure() {  # measure SYSTEM RULES [PID for perf]
    local system="$1" rules="$2" pid="${3:-}" rep
    for rep in $(seq "$repeats"); do
        local before after line sent elapsed cpu_ms="" p50="" p99="" psent=0 precv=0
        before=$(sink_count)
        if [ -n "$pid" ]; then
            perf stat -x, -e task-clock -p "$pid" -- sleep "$seconds" 2>"$work/perf.txt" >/dev/null &
            perf_pid=$!
        fi
        local probes; probes=$(python3 -c "print(max(10, int($seconds * 50) - 25))")
        if [ "$system" != ceiling ]; then
            ip netns exec $C ping -n -i 0.02 -W 1 -c "$probes" 198.19.0.2 >"$work/ping.txt" 2>&1 &
            ping_pid=$!
        fi
        line=$(generate "$seconds" ${rate:+--rate "$rate"})
        [ -n "$pid" ] && { wait "$perf_pid" || true; cpu_ms=$(awk -F, '/task-clock/ {print $1}' "$work/perf.txt"); }
        if [ "$system" != ceiling ]; then
            wait "$ping_pid" || true
            read -r p50 p99 psent precv < <(python3 - "$work/ping.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rtts = sorted(float(x) * 1000 for x in re.findall(r"time=([0-9.]+) ms", text))
m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
sent, received = (m.group(1), m.group(2)) if m else ("0", "0")
pick = lambda q: f"{rtts[min(len(rtts) - 1, int(q * len(rtts)))]:.0f}" if rtts else ""
print(pick(0.5) or "-", pick(0.99) or "-", sent, received)
PY
)
        fi
        sleep 0.3   # frames still in flight reach the sink
        after=$(sink_count)
        sent=$(sed -E 's/.*sent=([0-9]+).*/\1/' <<<"$line"); elapsed=$(sed -E 's/.*seconds=([0-9.]+).*/\1/' <<<"$line")
        echo "$system,$rules,$rep,$sent,$((after - before)),$elapsed,${cpu_ms:-},$mhz,${p50/-/},${p99/-/},$psent,$precv" >>"$csv"
        log "$system rules=$rules run $rep: $(python3 -c "print(f'{$((after - before))/$elapsed/1e6:.3f} Mpps at the sink, {$sent/$elapsed/1e6:.3f} offered')") p50=${p50}us p99=${p99}us"
    done
}

not_available() {  # not_available SYSTEM RULES WHY
    echo "$1,$2,0,,,,,,,,," >>"$csv"
    echo "$1 (rules $2): not available: $3" >>"$out/not-available.txt"
    log "$1: not available: $3"
}

want() { [ "$systems" = all ] || [[ ",$systems," == *",$1,"* ]]; }
want_extra() { [ "$extras" = all ] || [[ ",$extras," == *",$1,"* ]]; }

sluice_gateway() {  # sluice_gateway SYSTEM RULES POLICY [extra flags]: start, measure, stop
    local system="$1" n="$2" policy="$3"; shift 3
    if [ ! -x "$forward_bench" ]; then not_available "$system" "$n" "no release forward-bench"; return; fi
    if start_gateway "$work/$system-$n.log" "$forward_bench" gateway --inside gin --outside gout --policy "$policy" \
        --queues "$queues" --cores "$cpus" "$@"; then
        measure "$system" "$n" "$worker_pid"
        stop_gateway
        grep -E "^(flows_|dropped|denied|allowed|offload|xdp_|worker_|received_packets|transmitted_packets|batches|tx_|rx_wakeups|fill_ring)" "$work/$system-$n.log" | sed "s/^/  $system-$n: /" >>"$out/gateway-counters.txt" || true
        # The workers' own count, as the C loop's: busy cycles (receive to transmit) per received packet.
        awk '/^worker_busy_cycles /{c=$2} /^received_packets /{p=$2}
             END{if (p>0) printf "  %s-%s: worker_busy_cycles_per_packet %.0f\n", sys, n, c/p}' \
            sys="$system" n="$n" "$work/$system-$n.log" >>"$out/gateway-counters.txt" || true
    else
        not_available "$system" "$n" "gateway failed to start: $(tail -2 "$work/$system-$n.log" | tr '\n' ' ')"
    fi
    reset_gateway
}


# Policy swap under load: `sluice run` with the API in plain HTTP on the gateway namespace's
# loopback; the largest rule set is written through `PUT /api/v1/policies/by-name/bench` while the
# generator sends at a rate the gateway sustains (so any loss is the swap's). The response carries
# `deployment.dataplane`: `confirmed` once every worker runs the new generation (docs/api.md).
policy_swap() {
    local n="${rule_counts[-1]}" data="$work/sluice-data" token rate=20000 i
    [[ ",$rules," == *",10000,"* ]] && n=10000   # the issue's goal is stated at 10,000 rules
    "$nft_rules" --rules "$n" --seed 43 --out "$work/swap-b" >/dev/null
    for x in "rules-$n" swap-b; do
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["name"]="bench"; print(json.dumps(d))' \
            "$work/$x/policy.json" >"$work/$x/put.json"
    done
    token=$(ip netns exec $G "$sluice" token create --data-dir "$data" --role admin 2>/dev/null | tail -1)
    ip netns exec $G nice -n "$nice" "$sluice" run --data-dir "$data" --api-listen 127.0.0.1:18080 --api-plaintext \
        --inside gin --outside gout --policy "$work/rules-$n/policy.json" --queues "$queues" --cores "$cpus" \
        </dev/null >"$work/sluice-run.log" 2>&1 &
    local run_pid=$!
    for _ in $(seq 100); do
        ip netns exec $G curl -s -o /dev/null http://127.0.0.1:18080/ready && break; sleep 0.2
    done
    put() {  # put BODY: prints seconds to the response, generation and dataplane state
        ip netns exec $G curl -s -o "$work/put-resp.json" -w '%{time_total}' -X PUT -H "Authorization: Bearer $token" \
            -H 'Content-Type: application/json' --data-binary @"$1" http://127.0.0.1:18080/api/v1/policies/by-name/bench
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])).get("deployment",{}); print("", d.get("generation"), d.get("dataplane"))' "$work/put-resp.json" 2>/dev/null || echo " ? ?"
    }
    echo "policy swap ($n rules, sluice run, generator at $rate pps, $((seconds)) s):"
    echo "  initial PUT (activates the API's copy): $(put "$work/rules-$n/put.json")"
    local before after line; before=$(sink_count)
    generate "$seconds" --rate "$rate" >"$work/swap-gen.txt" &
    local gen=$!
    sleep 1
    for i in 1 2 3; do
        echo "  swap $i to B: seconds generation dataplane = $(put "$work/swap-b/put.json")"
        sleep 0.5
        echo "  swap $i to A: seconds generation dataplane = $(put "$work/rules-$n/put.json")"
        sleep 0.5
    done
    wait "$gen"; sleep 0.3; after=$(sink_count); line=$(cat "$work/swap-gen.txt")
    echo "  traffic during the swaps (bench flows stay allowed by both policies): $line received=$((after - before))"
    kill -TERM "$run_pid" 2>/dev/null || true; wait "$run_pid" 2>/dev/null || true
    reset_gateway
}

# ---------------------------------------------------------------- the systems
log "load before the run: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; gateway cpus $cpus, generator cpus $gen_cpus, $queues queue(s)"
echo "# run $(date -u +%FT%TZ) rate=${rate:-max} seconds=$seconds repeats=$repeats rules=$rules cpus=$cpus gen_cpus=$gen_cpus queues=$queues gen=$gen frames=$frames family=$family proto=$proto flows=$flows load=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/runs.txt"
for n in "${rule_counts[@]}"; do
    "$nft_rules" --rules "$n" --out "$work/rules-$n" | sed "s/^/rules $n: /" >>"$out/rulesets.txt"
done
topology "$queues"
[ -n "${BENCH_TOPOLOGY_ONLY:-}" ] && { trap - EXIT; echo "topology up; work=$work"; exit 0; }

if want ceiling; then
    ip -n $G link set dev gin xdpdrv obj "$obj" sec xdp program xdp_ceiling
    # The ceiling counts at gin itself.
    sink_count() { python3 "$here/xdp/xdpcount.py" $G gin; }
    measure ceiling 0
    sink_count() { python3 "$here/xdp/xdpcount.py" $U u0; }
    reset_gateway
fi
if want xskfwd; then
    if start_gateway "$work/xskfwd.log" "$work/xskfwd" --in gin --out gout --dst-mac "$u0_mac" --queues "$queues" \
        --cpus "$cpus" --obj "$obj" ${xskfwd_flags:-}; then
        measure xskfwd 0 "$worker_pid"
        stop_gateway
        sed 's/^/xskfwd: /' "$work/xskfwd.log" | grep forwarded >>"$out/gateway-counters.txt" || true
    else
        not_available xskfwd 0 "$(tail -2 "$work/xskfwd.log")"
    fi
    reset_gateway
fi
if want kernel; then measure kernel 0; fi
for n in "${rule_counts[@]}"; do
    for enc in naive best; do
        want "nft-$enc" || continue
        if [[ ",$nft_counts," != *",$n,"* ]]; then not_available "nft-$enc" "$n" "left out of this run (--nft-rules $nft_counts)"; continue; fi
        start=$(date +%s.%N)
        if ip netns exec $G nft -f "$work/rules-$n/$enc.nft" 2>"$work/nft.err"; then
            echo "nft-$enc,$n,load_seconds,$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")" >>"$out/nft-load.csv"
            measure "nft-$enc" "$n"
        else
            not_available "nft-$enc" "$n" "nft -f failed: $(head -2 "$work/nft.err" | tr '\n' ' ')"
        fi
        reset_gateway
    done
    if want sluice; then
        if [ "$offload_flag" = yes ]; then
            sluice_gateway sluice "$n" "$work/rules-$n/policy.json" --no-offload
        else
            sluice_gateway sluice "$n" "$work/rules-$n/policy.json"   # this build has no offload: pure AF_XDP path
        fi
    fi
    if want sluice-offload; then
        if [ "$offload_flag" = yes ]; then
            sluice_gateway sluice-offload "$n" "$work/rules-$n/policy.json"
        else
            not_available sluice-offload "$n" "forward-bench gateway has no --no-offload flag: flow offload is not in this build"
        fi
    fi
done

# ---------------------------------------------------------------- extras
extras_md="$out/extras.md"
first_rules="${rule_counts[0]}"
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
if [ "$extras" != none ] && [ -x "$forward_bench" ]; then
    if want_extra fps || want_extra memory; then
        # New flows per second and memory: a SYN flood of unique tuples into a 1,048,576-entry flow table,
        # against the same gateway with a 1,024-entry table (RSS difference = the table itself).
        for size in 1024 1048576; do
            start_gateway "$work/fps-$size.log" "$forward_bench" gateway --inside gin --outside gout \
                --policy "$work/rules-$first_rules/policy.json" --queues "$queues" --cores "$cpus" --flow-table-size "$size" || continue
            rss_start=$(rss_kib "$worker_pid")
            syn=$(proto=syn flows=0 generate "$seconds")
            rss_end=$(rss_kib "$worker_pid")
            stop_gateway
            opened=$(awk '/^flows_opened/ {print $2}' "$work/fps-$size.log"); refused=$(awk '/^flows_refused/ {print $2}' "$work/fps-$size.log")
            echo "flow-table $size: rss_start_kib=$rss_start rss_after_flood_kib=$rss_end flows_opened=${opened:-0} flows_refused=${refused:-0} seconds=$seconds generator: $syn" >>"$extras_md"
            log "flow table $size: RSS $rss_start → $rss_end KiB, opened ${opened:-0}, refused ${refused:-0} in $seconds s"
            reset_gateway
        done
    fi
    if want_extra scaling; then
        # Queues 1, 2, 4 with the given core list (on a 2-CPU VM the generator and workers share cores).
        all_cpus=$(seq -s, 0 $(($(nproc) - 1)))
        for q in 1 2 4; do
            topology "$q"
            # Worker i on the i-th CPU of --cpus, cycling when there are more queues than CPUs.
            qcores=$(python3 -c 'import sys; c=sys.argv[1].split(","); print(",".join(c[i % len(c)] for i in range(int(sys.argv[2]))))' "$cpus" "$q")
            if start_gateway "$work/scale-$q.log" "$forward_bench" gateway --inside gin --outside gout \
                --policy "$work/rules-$first_rules/policy.json" --queues "$q" --cores "$qcores"; then
                before=$(sink_count); line=$(gen_cpus="$all_cpus" generate "$seconds"); sleep 0.3; after=$(sink_count)
                stop_gateway
                echo "scaling queues=$q cores=$qcores generator_cpus=$all_cpus: received=$((after - before)) generator: $line" >>"$extras_md"
                log "scaling $q queues: $((after - before)) packets in $seconds s"
            fi
            reset_gateway
        done
        topology "$queues"
    fi
    if want_extra swap; then
        if [ -x "$sluice" ]; then policy_swap >>"$extras_md" || echo "policy swap: failed (log above)" >>"$extras_md"
        else echo "policy swap: not available: no release sluice (swift build -c release --product sluice)" >>"$extras_md"; fi
    fi
fi

python3 "$here/summarize.py" "$out"
log "results in $out (summary.md, results.csv, bench-pps.png, extras.md)"
