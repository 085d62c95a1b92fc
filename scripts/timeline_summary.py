#!/usr/bin/env python3
"""Reads a kernel timeline written by bench/timeline's tracer (SABLE_TRACE, tab-separated) and
prints, for the replays of the most-launched CUDA graph (a decode step), the step spans, the
kernels of the median step by total time, and one stretch of that step in launch order with each
kernel's start and end relative to the step, so that two branches of a fork can be compared.

  usage: scripts/timeline_summary.py TRACE.tsv [--from N] [--count M] [--compare OTHER.tsv]
  --from/--count: the stretch listed (kernels N .. N+M-1 of the step in start order; default: the
  third attention kernel's layer, 40 kernels).
  --compare: instead, the median steps of both traces side by side: span, idle time, and each
  kernel's (grid, name) total time in both, largest differences first.

Kernels launched with PDL start before their predecessor ends and wait inside, so a duration is
not a cost: read the ends against the next kernel's start."""
import argparse
import collections
import csv
import re
import statistics


def load(path):
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            for k in ("start_ns", "end_ns", "stream", "graph", "node", "grid", "block"):
                r[k] = int(r[k])
            rows.append(r)
    return rows


def replays(rows):
    """The most-launched graph's replays: a new replay where its first node comes round again."""
    counts = collections.Counter(r["graph"] for r in rows if r["graph"] != 0)
    if not counts:
        return []
    graph = counts.most_common(1)[0][0]
    g = sorted((r for r in rows if r["graph"] == graph), key=lambda r: r["start_ns"])
    first, steps, cur = g[0]["node"], [], []
    for r in g:
        if r["node"] == first and cur:
            steps.append(cur)
            cur = []
        cur.append(r)
    steps.append(cur)
    return steps


def short(name):
    name = re.sub(r"^void ", "", name)
    name = re.sub(r"\(anonymous namespace\)::", "", name)
    name = re.sub(r"sable::(ops::cuda::|attention::flash::|cuda::)", "", name)
    return name[:60]


def span(s):
    return (max(r["end_ns"] for r in s) - min(r["start_ns"] for r in s)) / 1e3


def median_step(steps):
    return sorted(sorted(steps, key=span)[len(steps) // 2], key=lambda r: r["start_ns"])


def idle_us(step):
    idle, end = 0, step[0]["end_ns"]
    for r in step[1:]:
        idle += max(0, r["start_ns"] - end)
        end = max(end, r["end_ns"])
    return idle / 1e3


def compare(a_path, b_path):
    steps = [median_step(replays(load(p))) for p in (a_path, b_path)]
    print(f"span us   {span(steps[0]):10.1f} {span(steps[1]):10.1f}")
    print(f"idle us   {idle_us(steps[0]):10.1f} {idle_us(steps[1]):10.1f}")
    totals = [collections.Counter(), collections.Counter()]
    for t, step in zip(totals, steps):
        for r in step:
            t[(r["grid"], short(r["name"]))] += (r["end_ns"] - r["start_ns"]) / 1e3
    keys = sorted(set(totals[0]) | set(totals[1]), key=lambda k: -abs(totals[1][k] - totals[0][k]))
    print("        A us       B us    B - A   grid  kernel (PDL waits included)")
    for k in keys[:25]:
        print(f"{totals[0][k]:12.1f} {totals[1][k]:10.1f} {totals[1][k] - totals[0][k]:8.1f} "
              f"{k[0]:6d}  {k[1]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--from", dest="start", type=int, default=-1)
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--compare", default="")
    a = ap.parse_args()
    if a.compare:
        compare(a.trace, a.compare)
        return
    steps = replays(load(a.trace))
    if not steps:
        print("no graph replays in", a.trace)
        return
    spans = [span(s) for s in steps]
    print(f"{len(steps)} replays of {len(steps[0])} kernels; span us: median "
          f"{statistics.median(spans):.1f}, min {min(spans):.1f}, max {max(spans):.1f}")
    # Idle time: parts of the median step no kernel or copy covers, and the longest such gaps.
    step0 = median_step(steps)
    gaps, end = [], step0[0]["end_ns"]
    for r in step0[1:]:
        if r["start_ns"] > end:
            gaps.append((r["start_ns"] - end, short(r["name"])))
        end = max(end, r["end_ns"])
    gaps.sort(reverse=True)
    print(f"idle {sum(g for g, _ in gaps) / 1e3:.1f} us in {len(gaps)} gaps; longest: " +
          ", ".join(f"{g / 1e3:.1f} before {n or '?'}" for g, n in gaps[:4]))
    step = step0
    t0 = step[0]["start_ns"]
    by = collections.defaultdict(lambda: [0, 0])
    for r in step:
        k = (r["stream"], short(r["name"]), r["grid"])
        by[k][0] += 1
        by[k][1] += r["end_ns"] - r["start_ns"]
    print("stream  count   total us   grid  kernel (median step; PDL waits included)")
    for (stream, name, grid), (n, d) in sorted(by.items(), key=lambda x: -x[1][1])[:30]:
        print(f"{stream:6d} {n:6d} {d / 1e3:10.1f} {grid:6d}  {name}")
    start = a.start
    if start < 0:
        att = [i for i, r in enumerate(step) if "attention" in r["name"] or "flash" in r["name"]]
        start = max(0, att[2] - 4) if len(att) > 2 else 0
    print(f"\nkernels {start}..{start + a.count - 1} in start order (us from the step's start)")
    print("stream     start       end   dur   grid  kernel")
    for r in step[start:start + a.count]:
        print(f"{r['stream']:6d} {(r['start_ns'] - t0) / 1e3:9.2f} {(r['end_ns'] - t0) / 1e3:9.2f} "
              f"{(r['end_ns'] - r['start_ns']) / 1e3:6.2f} {r['grid']:6d}  {short(r['name'])}")


if __name__ == "__main__":
    main()
