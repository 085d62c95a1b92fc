#!/usr/bin/env python3
"""Sable against llama.cpp on the CPU: the same GGUF file, the same threads, in one run.

For each model file and batch size B it measures, on both engines, the same three things:
  prefill tok/s  one forward of B sequences x P pseudo-random prompt tokens
  decode tok/s   S decode steps of the whole batch (B tokens a step, greedy: each sequence feeds
                 back the argmax of its own logits), B x S / wall time
Sable runs as bench/cpu_decode's sable_bench_cpu_decode (model runner, CPU ops, CPU attention,
packed weights unless --dequantize); llama.cpp runs through llama-cpp-python's low-level API
(llama_decode on a llama_batch; one sequence id per row, n_seq_max = B), in a child process per
measurement, or, with --llama-bench PATH (when llama-cpp-python is not installed: its PyPI build
compiles llama.cpp for hours on a small VM), through llama.cpp's own `llama-batched-bench` binary
(`-npp P -ntg S -npl B -t T -tb T`: B sequences of P prompt tokens decoded in one batch, then S
steps of B tokens; its S_PP and S_TG columns are the same two rates; the table header names the
weight buffers its load log reports, e.g. AMX when it runs batches on AMX tiles). The engines alternate for --repeat rounds and the median of each is reported, with
the load average around the run: on a shared machine the numbers are only comparable within one
run. Prints a Markdown table (for bench/NOTES.md) and one JSON line per measurement.

--cpu-time measures tokens per CPU-second instead of per wall second (a machine shared with other
jobs then slows both engines' clocks, not their counts): each measurement is three runs of the
engine, (P prompt, S steps), (P, 3S) and (2P, S), timed by the CPU time (user + system) of the
child process; decode = B x 2S / (cpu(P, 3S) - cpu(P, S)), prefill = B x P / (cpu(2P, S) -
cpu(P, S)) (loading, warm-up and the rest cancel; the second prefill's P tokens attend to P more
positions, a few percent of its work at these sizes).

Usage: bench/cpu_decode/vs_llamacpp.py --model A.gguf [--model B.gguf] [--threads 2]
       [--batch 1,8] [--prompt 64] [--steps 32] [--repeat 3] [--build build]
       [--llama-bench /path/to/llama-batched-bench] [--fp32-activations | --dequantize]
       [--cpu-time]
"""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def llama_child(model: str, threads: int, batch: int, prompt: int, steps: int) -> dict:
    """Runs inside a child process: llama.cpp's prefill and decode timings."""
    import ctypes
    import random

    import numpy as np
    import llama_cpp as L

    L.llama_backend_init()
    mp = L.llama_model_default_params()
    lm = L.llama_model_load_from_file(model.encode(), mp)
    vocab = L.llama_n_vocab(L.llama_model_get_vocab(lm))
    cp = L.llama_context_default_params()
    per_seq = prompt + steps + 16
    cp.n_ctx = batch * per_seq
    cp.n_batch = cp.n_ubatch = max(512, batch * prompt)
    cp.n_seq_max = batch
    cp.n_threads = cp.n_threads_batch = threads
    ctx = L.llama_init_from_model(lm, cp)
    b = L.llama_batch_init(max(batch * prompt, batch), 0, batch)

    def decode(rows):  # rows: (token, pos, seq, want_logits)
        b.n_tokens = len(rows)
        for i, (tok, pos, seq, want) in enumerate(rows):
            b.token[i], b.pos[i], b.n_seq_id[i] = tok, pos, 1
            b.seq_id[i][0] = seq
            b.logits[i] = want
        if L.llama_decode(ctx, b) != 0:
            raise RuntimeError("llama_decode failed")

    def argmax(i):
        return int(np.argmax(np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, i), shape=(vocab,))))

    def clear():
        if hasattr(L, "llama_memory_clear"):
            L.llama_memory_clear(L.llama_get_memory(ctx), True)
        else:
            L.llama_kv_self_clear(ctx)

    rng = random.Random(42)
    # Warm-up (weights paged in, buffers grown), as the Sable bench does.
    decode([(rng.randrange(vocab), p, 0, p == 7) for p in range(8)])
    clear()
    prompts = [[rng.randrange(vocab) for _ in range(prompt)] for _ in range(batch)]
    rows = [(t, p, s, p == prompt - 1) for s in range(batch) for p, t in enumerate(prompts[s])]
    t0 = time.perf_counter()
    decode(rows)
    t1 = time.perf_counter()
    nxt = [argmax(s * prompt + prompt - 1) for s in range(batch)]
    t2 = time.perf_counter()
    for step in range(steps):
        decode([(nxt[s], prompt + step, s, True) for s in range(batch)])
        nxt = [argmax(s) for s in range(batch)]
    t3 = time.perf_counter()
    L.llama_batch_free(b)
    return {"prefill_tok_s": batch * prompt / (t1 - t0), "decode_tok_s": batch * steps / (t3 - t2)}


def child_cpu_s() -> float:
    """CPU seconds (user + system) of the finished child processes so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def per_cpu_second(run, batch, prompt, steps):
    """Tokens per CPU-second of one engine: `run(prompt, steps)` three times (module docstring)."""
    cpu, extra = [], {}
    for p, s in ((prompt, steps), (prompt, 3 * steps), (2 * prompt, steps)):
        c0 = child_cpu_s()
        extra = {k: v for k, v in run(p, s).items() if not k.endswith("_tok_s")}
        cpu.append(child_cpu_s() - c0)
    # A pair whose longer run took no more CPU than the shorter one (its loading cost more system
    # time) measures nothing: NaN, left out of the median.
    def rate(tokens, seconds):
        return tokens / seconds if seconds > 0 else float("nan")
    return {"prefill_tok_s": rate(batch * prompt, cpu[2] - cpu[0]),
            "decode_tok_s": rate(batch * 2 * steps, cpu[1] - cpu[0]), **extra}


def run_llama(model, threads, batch, prompt, steps):
    args = [sys.executable, __file__, "--child", model, str(threads), str(batch), str(prompt),
            str(steps)]
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_llama_bench(exe, model, threads, batch, prompt, steps):
    """llama.cpp's llama-batched-bench: one table row for this batch size."""
    ctx = max(2048, batch * (prompt + steps) + 64)
    args = [exe, "-m", model, "-c", str(ctx), "-b", "512", "-ub", "512", "-npp", str(prompt),
            "-ntg", str(steps), "-npl", str(batch), "-t", str(threads), "-tb", str(threads)]
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    # Where llama.cpp put the weights ("CPU", "CPU_REPACK", "AMX": its load log's "X model buffer
    # size" lines): an AMX buffer means it runs batches > 1 on AMX tiles (bench/NOTES.md "Q4_0 /
    # Q4_1 tiles"); "AMX is not ready" means the kernel refused the tile state.
    log = out.stdout + out.stderr
    buffers = sorted(set(re.findall(r"(\S+) model buffer size", log)))
    if "AMX is not ready" in log:
        buffers.append("AMX refused")
    for line in out.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        # | PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | T s | S t/s |
        if len(cells) == 10 and cells[0] == str(prompt) and cells[2] == str(batch):
            return {"prefill_tok_s": float(cells[5]), "decode_tok_s": float(cells[7]),
                    "llama_buffers": ",".join(buffers)}
    raise RuntimeError(f"no result row for batch {batch} in llama-batched-bench output:\n"
                       + out.stdout + out.stderr)


def run_sable(build, model, threads, batch, prompt, steps, dequantize, fp32_act):
    exe = Path(build) / "bin" / "sable_bench_cpu_decode"
    args = [str(exe), "--model", model, "--batch", str(batch), "--prompt", str(prompt), "--steps",
            str(steps), "--threads", str(threads), "--plugin-dir", str(Path(build) / "bin" / "plugins")] + (["--dequantize"] if dequantize else []) + (
                ["--fp32-activations"] if fp32_act else [])
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    line = [l for l in out.stdout.splitlines() if l.startswith("model=")][-1]
    kv = dict(f.split("=", 1) for f in line.split())
    return {"prefill_tok_s": float(kv["prefill_tok_s"]), "decode_tok_s": float(kv["decode_tok_s"])}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        m, t, b, p, s = sys.argv[2], *map(int, sys.argv[3:7])
        print(json.dumps(llama_child(m, t, b, p, s)))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", default="1,8")
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--dequantize", action="store_true", help="Sable with fp32 weights")
    ap.add_argument("--fp32-activations", action="store_true",
                    help="Sable with fp32 activations against quantized weights (default: int8, "
                    "llama.cpp's scheme)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="tokens per CPU-second (three runs per measurement) instead of per second")
    ap.add_argument("--llama-bench", metavar="PATH",
                    help="llama.cpp side through this llama-batched-bench binary instead of "
                    "llama-cpp-python")
    a = ap.parse_args()
    rows = []
    buffers = set()  # llama-batched-bench's weight buffers, as run_llama_bench reports them
    for model in a.model:
        for batch in map(int, a.batch.split(",")):
            res = {"sable": [], "llama.cpp": []}
            loads = [os.getloadavg()[0]]
            def llama(p, s):
                if a.llama_bench:
                    return run_llama_bench(a.llama_bench, model, a.threads, batch, p, s)
                return run_llama(model, a.threads, batch, p, s)

            def sable(p, s):
                return run_sable(a.build, model, a.threads, batch, p, s, a.dequantize,
                                 a.fp32_activations)

            for _ in range(a.repeat):
                for engine, run in (("llama.cpp", llama), ("sable", sable)):
                    res[engine].append(per_cpu_second(run, batch, a.prompt, a.steps)
                                       if a.cpu_time else run(a.prompt, a.steps))
                loads.append(os.getloadavg()[0])
            for engine, runs in res.items():
                for r in runs:
                    print(json.dumps({"engine": engine, "model": Path(model).name, "batch": batch,
                                      "threads": a.threads, "prompt": a.prompt, "steps": a.steps,
                                      "per": "cpu_s" if a.cpu_time else "s", **r}))
            med = {e: {k: statistics.median([r[k] for r in runs if r[k] == r[k]] or [float("nan")])
                       for k in ("prefill_tok_s", "decode_tok_s")} for e, runs in res.items()}
            buffers.update(r["llama_buffers"] for r in res["llama.cpp"] if "llama_buffers" in r)
            rows.append((Path(model).name, batch, med, min(loads), max(loads)))
            sys.stdout.flush()
    unit = "tokens per CPU-second" if a.cpu_time else "tokens per second"
    print(f"\n{a.threads} threads, prompt {a.prompt}, {a.steps} decode steps, median of {a.repeat}, "
          f"{unit}" + (f"; llama.cpp weight buffers: {' / '.join(sorted(buffers))}" if buffers else ""))
    print_table(rows)


def print_table(rows):
    """The medians as a markdown table, each Sable cell with its ratio to llama.cpp, then issue 21's
    bar: Sable >= llama.cpp at batch 1 and ahead at larger batches, prefill and decode."""
    print("| model | batch | Sable prefill | llama.cpp prefill | Sable decode | llama.cpp decode "
          "| load avg |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    behind = []
    for name, batch, med, lo, hi in rows:
        s, l = med["sable"], med["llama.cpp"]
        cells = []
        for key, what in (("prefill_tok_s", "prefill"), ("decode_tok_s", "decode")):
            ratio = s[key] / l[key] if l[key] > 0 else float("nan")
            cells.append(f"{s[key]:.1f} ({ratio:.2f}x) | {l[key]:.1f}")
            if not (ratio >= 1.0 if batch == 1 else ratio > 1.0):
                behind.append(f"{name} batch {batch} {what} {ratio:.2f}x")
        print(f"| {name} | {batch} | {cells[0]} | {cells[1]} | {lo:.1f}-{hi:.1f} |")
    print("bar (>= at batch 1, ahead at larger batches): " +
          ("met in every cell" if not behind else "not met: " + ", ".join(behind)))


if __name__ == "__main__":
    main()
