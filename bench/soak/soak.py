#!/usr/bin/env python3
"""Soak test: many misbehaving clients against one `sable serve` for a fixed time, then proof that
the server came out whole.

Why: a serving engine is trusted when it keeps answering under load, survives clients that go away
or abort mid-stream, and gives every page of its KV pool back. This driver mixes, on both APIs
(native /generate and OpenAI /v1/completions, /v1/chat/completions), streaming and non-streaming
requests, n > 1, grammars (regex, json_schema), stop strings, very long prompts, explicit aborts
(/abort_request), client disconnects mid-stream and requests that must be refused (400). Each
answer is checked for shape and for what its parameters promise (grammar output matches, stop
strings are trimmed, a stream ends with its finish reason and [DONE]).

At the end it checks: no request stuck (running and queued drain to 0), no KV page leaked
(kv_pages_free + kv_pages_evictable == kv_pages_total at rest, and all pages free after
/flush_cache), RSS flat (VmRSS of the server sampled once a second), /health_generate 200, and no
unexplained error. It prints a summary (and writes it as JSON with --json) and exits 1 when a check
fails.

  bench/soak/soak.py --duration 3600                 # starts build*/bin/sable with the test model
  bench/soak/soak.py --url http://host:port --pid N  # an already running server
"""
import argparse
import asyncio
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import aiohttp

from scenarios import Soak, Tally

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TEST_MODEL = os.path.join(SOURCE_DIR, "tests", "golden", "models", "qwen2_tok")


class RssSampler:
    """VmRSS of the server, once a second: [(seconds since start, MiB)]."""

    def __init__(self, pid):
        self.pid, self.samples, self.t0 = pid, [], time.monotonic()

    def read(self):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024.0
        except OSError:
            return None
        return None

    async def run(self, stop):
        while not stop.is_set():
            if (mib := self.read()) is not None:
                self.samples.append((time.monotonic() - self.t0, mib))
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass


async def get_json(http, url):
    async with http.get(url) as r:
        return r.status, (await r.json() if r.status == 200 else await r.text())


async def final_checks(url, report, args):
    """Idle, pages, flush, health: appends failures to report['failures']."""
    fails = report["failures"]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        deadline, state = time.monotonic() + args.idle_timeout, None
        while time.monotonic() < deadline:
            status, info = await get_json(http, url + "/get_server_info")
            state = info["internal_states"][0]
            if state["num_running_reqs"] == 0 and state["num_queue_reqs"] == 0:
                break
            await asyncio.sleep(0.2)
        else:
            fails.append(f"stuck: {state['num_running_reqs']} running, "
                         f"{state['num_queue_reqs']} queued {args.idle_timeout} s after the load")
        await asyncio.sleep(0.5)  # the scheduler publishes its figures at the end of a step
        status, info = await get_json(http, url + "/get_server_info")
        s = info["internal_states"][0]
        if "kv_pages_total" not in s:
            fails.append("the server reports no KV pages (internal_states[0].kv_pages_total)")
            return
        leaked = s["kv_pages_total"] - s["kv_pages_free"] - s["kv_pages_evictable"]
        report["pages"] = {k: s[k] for k in ("kv_pages_total", "kv_pages_free", "kv_pages_cached",
                                             "kv_pages_evictable")}
        report["pages"]["leaked"] = leaked
        if s["kv_pages_total"] <= 0:
            fails.append("the server reports no KV pages (kv_pages_total)")
        if leaked != 0:
            fails.append(f"{leaked} KV pages leaked: {report['pages']}")
        async with http.post(url + "/flush_cache") as r:
            flushed = r.status == 200
        await asyncio.sleep(0.3)
        status, info = await get_json(http, url + "/get_server_info")
        s = info["internal_states"][0]
        report["pages"]["free_after_flush"] = s["kv_pages_free"]
        if not flushed or s["kv_pages_free"] != s["kv_pages_total"]:
            fails.append(f"after /flush_cache (status ok: {flushed}) {s['kv_pages_free']} of "
                         f"{s['kv_pages_total']} pages are free")
        async with http.get(url + "/health_generate") as r:
            report["health_generate"] = r.status
            if r.status != 200:
                fails.append(f"/health_generate answered {r.status}")


def rss_report(samples, duration, limit_mib, report):
    """Drift from the end of the warm-up (first quarter) to the end, and the second half's slope."""
    if len(samples) < 4:
        report["rss"] = None
        return
    warm = [m for t, m in samples if t >= duration * 0.25] or [samples[-1][1]]
    base, end = warm[0], samples[-1][1]
    half = [(t, m) for t, m in samples if t >= duration * 0.5]
    slope = 0.0
    if len(half) >= 2:
        n = len(half)
        mt = sum(t for t, _ in half) / n
        mm = sum(m for _, m in half) / n
        var = sum((t - mt) ** 2 for t, _ in half)
        slope = sum((t - mt) * (m - mm) for t, m in half) / var * 60 if var else 0.0
    report["rss"] = {"start_mib": round(samples[0][1], 1), "after_warmup_mib": round(base, 1),
                     "end_mib": round(end, 1), "peak_mib": round(max(m for _, m in samples), 1),
                     "drift_mib": round(end - base, 1), "slope_mib_per_min": round(slope, 2)}
    if end - base > limit_mib:
        report["failures"].append(f"RSS grew {end - base:.1f} MiB after the warm-up "
                                  f"(limit {limit_mib} MiB): {report['rss']}")


def sable_binary(args):
    if args.sable_bin:
        return args.sable_bin
    found = sorted(glob.glob(os.path.join(SOURCE_DIR, "build*", "bin", "sable")), key=os.path.getmtime)
    if not found:
        sys.exit("soak: no sable binary: build it or pass --sable-bin")
    return found[-1]


def start_server(args):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sable_binary(args), "serve", "--model-path", args.model, "--host", "127.0.0.1",
           "--port", str(port), "--device", "cpu", "--max-total-tokens", str(args.max_total_tokens),
           "--enable-metrics", *args.server_args]
    log = open(args.server_log, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"soak: sable serve exited with {proc.returncode} (log: {args.server_log})")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    sys.exit(f"soak: server not ready in 180 s (log: {args.server_log})")


async def progress(tally, sampler, every, stop, t0):
    """One line on stderr every `every` seconds: what a long run has done so far (a run stopped
    early still leaves its figures)."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every)
            return
        except asyncio.TimeoutError:
            pass
        rss = sampler.samples[-1][1] if sampler and sampler.samples else None
        rss_text = f"{rss:.1f} MiB" if rss is not None else "n/a"
        print(f"soak: {time.monotonic() - t0:.0f} s: {sum(tally.sent.values())} sent, "
              f"{dict(tally.outcome)}, errors {dict(tally.errors) or 0}, RSS {rss_text}",
              file=sys.stderr, flush=True)


async def main_async(args, url, pid):
    tally = Tally()
    soak = Soak(args, url, tally)
    async with aiohttp.ClientSession() as http:
        status, info = await get_json(http, url + "/get_server_info")
        soak.context = int(info.get("context_length_effective") or 4096)
    stop = asyncio.Event()
    sampler = RssSampler(pid) if pid else None
    rss_task = asyncio.create_task(sampler.run(stop)) if sampler else None
    t0 = time.monotonic()
    deadline = t0 + args.duration
    load_over = asyncio.Event()
    progress_task = asyncio.create_task(progress(tally, sampler, args.progress, load_over, t0)) \
        if args.progress else None
    await asyncio.gather(*(soak.client(i, deadline) for i in range(args.concurrency)))
    load_over.set()
    if progress_task:
        await progress_task
    elapsed = time.monotonic() - t0
    report = {"duration_s": round(elapsed, 1), "concurrency": args.concurrency,
              "sent": sum(tally.sent.values()), "by_scenario": dict(sorted(tally.sent.items())),
              "outcomes": dict(tally.outcome), "errors": dict(tally.errors),
              "error_examples": tally.examples, "failures": []}
    await final_checks(url, report, args)
    stop.set()
    if rss_task:
        await rss_task
        rss_report(sampler.samples, elapsed, args.rss_drift_mib, report)
    unexplained = sum(tally.errors.values())
    report["unexplained_errors"] = unexplained
    if unexplained:
        report["failures"].append(f"{unexplained} unexplained errors: {dict(tally.errors)}")
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=60, help="seconds of load (default 60)")
    ap.add_argument("--concurrency", type=int, default=24, help="concurrent clients (default 24)")
    ap.add_argument("--url", help="a running server (default: start one)")
    ap.add_argument("--pid", type=int, help="its process id, for RSS (with --url)")
    ap.add_argument("--sable-bin", help="the sable binary (default: newest build*/bin/sable)")
    ap.add_argument("--model", default=TEST_MODEL, help="checkpoint (default: the test model)")
    ap.add_argument("--max-total-tokens", type=int, default=16384,
                    help="KV pool of the started server (default 16384: long prompts contend)")
    ap.add_argument("--server-arg", dest="server_args", action="append", default=[],
                    help="an extra argument for sable serve (repeat)")
    ap.add_argument("--server-log", default="/tmp/sable-soak-server.log")
    ap.add_argument("--request-timeout", type=float, default=120)
    ap.add_argument("--idle-timeout", type=float, default=30,
                    help="seconds the server gets to drain after the load")
    ap.add_argument("--rss-drift-mib", type=float, default=64,
                    help="most RSS growth after the warm-up (default 64 MiB)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--progress", type=float, default=0,
                    help="print the running figures every N seconds (default: only at the end)")
    ap.add_argument("--json", help="write the report here")
    args = ap.parse_args()

    proc = None
    if args.url:
        url, pid = args.url.rstrip("/"), args.pid
    else:
        proc, url = start_server(args)
        pid = proc.pid
    try:
        report = asyncio.run(main_async(args, url, pid))
    finally:
        if proc:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = "killed"
    if proc:
        report["server_exit"] = code
        if code != 0:
            report["failures"].append(f"sable serve exited with {code} after SIGTERM "
                                      f"(log: {args.server_log})")
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    if report["failures"]:
        print("soak: FAILED\n  " + "\n  ".join(report["failures"]), file=sys.stderr)
        sys.exit(1)
    print(f"soak: ok: {report['sent']} requests, {report['outcomes']}, "
          f"{report['pages']['leaked']} pages leaked, RSS drift "
          f"{(report.get('rss') or {}).get('drift_mib')} MiB", file=sys.stderr)


if __name__ == "__main__":
    main()
