#!/usr/bin/env bash
# Traffic from the kernel's pktgen, for machines whose kernel has it (/proc/net/pktgen) and a real
# NIC towards the gateway: one pktgen thread per CPU of --cpus, each sending 64-byte (or --size)
# UDP frames of --flows flows (source port and source address ranges) to the gateway's MAC.
# The development VMs have no pktgen module: there this script only passes `bash -n` and refuses
# to run (use bench/xdp/xdpgen through bench/run.sh instead). Needs root.
#
#   bench/pktgen.sh --dev IF --dst-mac MAC --dst IP [--src-min IP --src-max IP] [--size 64]
#                   [--flows 4096] [--seconds 10] [--cpus 0,1] [--dst-port 9000]
set -euo pipefail
dev=; dst_mac=; dst=; src_min=198.18.1.0; src_max=198.18.1.255; size=64; flows=4096; seconds=10
cpus=0; dst_port=9000
while (($#)); do
    case "$1" in
        --dev) dev="$2";; --dst-mac) dst_mac="$2";; --dst) dst="$2";; --src-min) src_min="$2";;
        --src-max) src_max="$2";; --size) size="$2";; --flows) flows="$2";; --seconds) seconds="$2";;
        --cpus) cpus="$2";; --dst-port) dst_port="$2";;
        *) echo "pktgen.sh: unknown argument $1" >&2; exit 2;;
    esac
    shift 2
done
[ -n "$dev" ] && [ -n "$dst_mac" ] && [ -n "$dst" ] || { sed -n 7,8p "$0" >&2; exit 2; }
[ -d /proc/net/pktgen ] || modprobe pktgen 2>/dev/null || true
[ -d /proc/net/pktgen ] || { echo "pktgen.sh: this kernel has no pktgen (/proc/net/pktgen); use bench/run.sh (XDP live frames)" >&2; exit 1; }

pg() {  # pg FILE COMMAND: write one pktgen command and check its result line
    echo "$2" >"$1"
    if ! grep -q "Result: OK" "$1" 2>/dev/null && [ "$(basename "$1")" != pgctrl ]; then
        echo "pktgen.sh: '$2' → $(grep Result "$1" 2>/dev/null)" >&2; exit 1
    fi
}
ports=$(( flows < 60000 ? flows : 60000 ))
IFS=, read -r -a cpu_list <<<"$cpus"
pg /proc/net/pktgen/pgctrl reset
for cpu in "${cpu_list[@]}"; do
    thread=/proc/net/pktgen/kpktgend_$cpu
    pg "$thread" rem_device_all
    pg "$thread" "add_device $dev@$cpu"
    d=/proc/net/pktgen/$dev@$cpu
    pg "$d" "count 0"                 # until stopped
    pg "$d" "pkt_size $((size - 4))"  # pktgen adds the FCS
    pg "$d" "clone_skb 0"
    pg "$d" "burst 32"
    pg "$d" "queue_map_min $cpu"; pg "$d" "queue_map_max $cpu"
    pg "$d" "dst_mac $dst_mac"
    pg "$d" "dst $dst"
    pg "$d" "src_min $src_min"; pg "$d" "src_max $src_max"
    pg "$d" "udp_dst_min $dst_port"; pg "$d" "udp_dst_max $dst_port"
    pg "$d" "udp_src_min 1024"; pg "$d" "udp_src_max $((1024 + ports - 1))"
    pg "$d" "flag UDPSRC_RND"; pg "$d" "flag IPSRC_RND"; pg "$d" "flag QUEUE_MAP_CPU"
done
echo start >/proc/net/pktgen/pgctrl &
starter=$!
sleep "$seconds"
echo stop >/proc/net/pktgen/pgctrl || true
wait "$starter" 2>/dev/null || true
total=0
for cpu in "${cpu_list[@]}"; do
    sent=$(awk '/pkts-sofar/ {print $2}' "/proc/net/pktgen/$dev@$cpu")
    total=$((total + ${sent:-0}))
done
echo "sent=$total seconds=$seconds pps=$((total / seconds))"
