#!/usr/bin/env python3
"""Summarises an `ncu --page source --csv --print-source sass` log (one kernel launch): the SASS
instructions holding the most warp-stall samples, with their share, so that a latency-bound
kernel's waits can be pinned to the loads or barriers behind them.
usage: ncu_stalls.py LOG.csv [TOP]"""
import csv
import io
import sys

text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
top = int(sys.argv[2]) if len(sys.argv) > 2 else 40
lines = text.splitlines()
start = next((i for i, l in enumerate(lines) if '"Source"' in l or l.startswith('"Address"')), None)
if start is None:
    print("no source table found; first lines:")
    print("\n".join(lines[:12]))
    sys.exit(0)
rows = list(csv.DictReader(io.StringIO("\n".join(lines[start:]))))
cols = list(rows[0].keys()) if rows else []
print("columns:", " | ".join(cols))


def num(v):
    try:
        return float(str(v).replace(",", ""))
    except ValueError:
        return 0.0


sample_col = next((c for c in cols if "Sampling (All" in c), None) or next(
    (c for c in cols if "Sampl" in c), None)
if sample_col is None:
    print("no sampling column")
    sys.exit(0)
total = sum(num(r[sample_col]) for r in rows) or 1.0
print(f"{len(rows)} instructions, {total:.0f} samples ({sample_col})")
extra = [c for c in cols if c.startswith("stall_") or "Stall" in c and c != sample_col][:6]
for r in sorted(rows, key=lambda r: -num(r[sample_col]))[:top]:
    s = num(r[sample_col])
    detail = " ".join(f"{c}={r[c]}" for c in extra if num(r[c]) > 0)
    print(f"{100 * s / total:5.1f}%  {r.get('Address', '?'):>6}  {r.get('Source', '')[:70]}  {detail}")
