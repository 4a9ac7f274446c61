#!/usr/bin/env python3
# Summary of a bench/run.sh run: OUT/results.csv → OUT/summary.md (median, min and max of every
# figure per system and rule count) and OUT/bench-pps.png (gnuplot: pps at the sink against rule
# count for every system; systems without rules are drawn flat).
#   bench/summarize.py OUT
import csv, os, statistics, subprocess, sys
from collections import defaultdict

out = sys.argv[1]
rows = defaultdict(list)
unavailable = set()
order = []
with open(os.path.join(out, "results.csv")) as f:
    for r in csv.DictReader(f):
        key = (r["system"], int(r["rules"]))
        if key not in order:
            order.append(key)
        if r["repeat"] == "0":
            unavailable.add(key)
            continue
        rows[key].append(r)


def stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def fmt(s, scale=1.0, digits=3):
    if s is None:
        return "n/a"
    m, lo, hi = (x * scale for x in s)
    return f"{m:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


summary = {}
lines = ["| system | rules | Mpps at sink | offered Mpps | loss % | cycles/pkt (perf task-clock) | probe p50 µs | probe p99 µs | probe loss % | runs |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for key in order:
    system, rules = key
    if key in unavailable and not rows[key]:
        lines.append(f"| {system} | {rules:,} | not available | | | | | | | 0 |")
        continue
    rs = rows[key]
    pps = [num(r["received"]) / num(r["seconds"]) for r in rs]
    offered = [num(r["sent"]) / num(r["seconds"]) for r in rs]
    loss = [100.0 * (1 - num(r["received"]) / num(r["sent"])) if num(r["sent"]) else None for r in rs]
    cycles = [num(r["cpu_ms"]) / 1000 * num(r["mhz"]) * 1e6 / num(r["received"])
              if num(r["cpu_ms"]) and num(r["received"]) else None for r in rs]
    p50 = [num(r["p50_us"]) for r in rs]
    p99 = [num(r["p99_us"]) for r in rs]
    probe_loss = [100.0 * (1 - num(r["probes_received"]) / num(r["probes_sent"])) if num(r["probes_sent"]) else None
                  for r in rs]
    summary[key] = stats(pps)
    lines.append(f"| {system} | {rules:,} | {fmt(stats(pps), 1e-6)} | {fmt(stats(offered), 1e-6)} | {fmt(stats(loss), 1, 1)} | "
                 f"{fmt(stats(cycles), 1, 0)} | {fmt(stats(p50), 1, 0)} | {fmt(stats(p99), 1, 0)} | "
                 f"{fmt(stats(probe_loss), 1, 1)} | {len(rs)} |")
with open(os.path.join(out, "summary.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))

# Plot: one line per system; flat systems (rules 0) across the measured rule counts.
rule_counts = sorted({r for (_, r) in summary if r > 0})
if not rule_counts:
    sys.exit(0)
series = defaultdict(list)
for (system, rules), s in summary.items():
    if s is None:
        continue
    if rules == 0:
        for n in rule_counts:
            series[system].append((n, *s))
    else:
        series[system].append((rules, *s))
data = os.path.join(out, "bench-pps.dat")
names = []
with open(data, "w") as f:
    for system, points in series.items():
        names.append(system)
        f.write(f"# {system}\n")
        for n, m, lo, hi in sorted(points):
            f.write(f"{n} {m / 1e6} {lo / 1e6} {hi / 1e6}\n")
        f.write("\n\n")
plot = [
    "set terminal pngcairo size 900,560 font ',10'",
    f"set output '{os.path.join(out, 'bench-pps.png')}'",
    "set logscale x", "set xlabel 'rules'", "set ylabel 'Mpps at the sink (median, min-max bars, log scale)'",
    "set key outside right", "set grid", "set logscale y", "set yrange [0.001:10]",
    f"set xrange [{rule_counts[0] / 1.5}:{rule_counts[-1] * 1.5}]",
    "set title 'Forwarding rate against rule count (64-byte frames unless noted; 2-vCPU VM, veth)'",
    "plot " + ", ".join(
        f"'{data}' index {i} using 1:2:3:4 with yerrorlines title '{name}'" for i, name in enumerate(names)),
]
try:
    subprocess.run(["gnuplot"], input="\n".join(plot), text=True, check=True)
except (OSError, subprocess.CalledProcessError) as error:
    # pngcairo may be missing in gnuplot-nox builds: fall back to the plain png terminal.
    plot[0] = "set terminal png size 900,560"
    try:
        subprocess.run(["gnuplot"], input="\n".join(plot), text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as error2:
        print(f"summarize: no plot ({error2}); bench/setup.sh installs gnuplot", file=sys.stderr)
