#!/usr/bin/env python3
# Packets counted by the harness's XDP program attached to an interface (xdp_sink or xdp_ceiling
# of bench_kern.c): reads its `sink_counter` map through bpftool and sums the CPUs.
#   xdpcount.py NETNS IFNAME   → prints the packet count
import json, subprocess, sys

netns, ifname = sys.argv[1], sys.argv[2]
link = json.loads(subprocess.check_output(["ip", "-n", netns, "-j", "link", "show", ifname]))[0]
prog = link["xdp"]["prog"]["id"]
maps = json.loads(subprocess.check_output(["bpftool", "-j", "prog", "show", "id", str(prog)])).get("map_ids", [])
for m in maps:
    info = json.loads(subprocess.check_output(["bpftool", "-j", "map", "show", "id", str(m)]))
    if info.get("name") == "sink_counter":
        entry = json.loads(subprocess.check_output(["bpftool", "-j", "map", "lookup", "id", str(m), "key", "0", "0", "0", "0"]))
        values = entry.get("values") or entry.get("formatted", {}).get("values", [])
        total = 0
        for v in values:
            value = v["value"]
            total += int.from_bytes(bytes(int(b, 16) for b in value), "little") if isinstance(value, list) else int(value)
        print(total)
        sys.exit(0)
sys.exit(f"xdpcount: no sink_counter map on {netns}/{ifname}")
