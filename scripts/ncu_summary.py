#!/usr/bin/env python3
"""Summarises an `ncu --csv --metrics gpu__time_duration.sum` log: device time per kernel name
(count, total, mean) and the total, so that a decode step's kernel time can be set against its
wall time. usage: ncu_summary.py LOG.csv"""
import collections
import csv
import io
import sys

text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
start = text.find('"ID"')
rows = list(csv.DictReader(io.StringIO(text[start:]))) if start >= 0 else []
per = collections.defaultdict(list)
for r in rows:
    if r.get("Metric Name") != "gpu__time_duration.sum":
        continue
    unit = r.get("Metric Unit", "ns")
    v = float(r["Metric Value"].replace(",", ""))
    v *= {"ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}.get(unit, 1e-3)
    # The grid tells apart launches of one kernel at different shapes (q|k|v, o, gate|up, down).
    per[r["Kernel Name"].split("(")[0][:60] + " grid " + r.get("Grid Size", "?")].append(v)
total = sum(sum(v) for v in per.values())
n = sum(len(v) for v in per.values())
print(f"kernels profiled: {n}, device time {total:.1f} us, mean {total / max(n, 1):.2f} us")
for name, v in sorted(per.items(), key=lambda kv: -sum(kv[1])):
    print(f"{sum(v):9.1f} us  {len(v):5d} x {sum(v) / len(v):7.2f} us  {name}")
