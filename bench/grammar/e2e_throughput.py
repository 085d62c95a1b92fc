#!/usr/bin/env python3
"""Issue 20's end-to-end bar: JSON-schema decoding at batch 32 against unconstrained decoding.

Starts `sable serve` with a model, sends the same prompts at a fixed concurrency through /generate
twice, unconstrained and with a JSON schema, and prints the output tokens per second of each and
their ratio (the bar: constrained >= 95 % of unconstrained at batch 32). `ratio` is over the
whole pass; `full_batch_ratio` over the part where every client slot had a request (the drain at
the end runs below batch 32, and requests that closed their JSON early leave slots idle there).
Both runs ask for the same number of new tokens; the schema allows long outputs (an array of free
strings) so that the grammar, not an early EOS, decides how many tokens are generated. Then (unless --no-compare) a second server with
--disable-jump-forward runs the JSON-schema pass again, so one run shows what jump-forward buys
(or costs: its extend steps run without CUDA graphs); /server_info's step and jump counters of each
pass are printed too, with the scheduler's time per step split into the model's (launch and the
sampling call that waits for the device) and the host's. Standard library only.

  python3 bench/grammar/e2e_throughput.py --sable build/bin/sable --model-path MODEL \
      [--device cuda] [--concurrency 32] [--requests 128] [--max-new-tokens 256] [--no-compare]
"""
import argparse
import concurrent.futures
import json
import socket
import subprocess
import sys
import time
import urllib.request

SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "year": {"type": "integer", "minimum": 1900, "maximum": 2100},
        "tags": {"type": "array", "items": {"type": "string"}},
        "notes": {"type": "array", "items": {"type": "string", "maxLength": 200}},
    },
    "required": ["title", "year", "tags", "notes"],
    "additionalProperties": False,
}


def post(url, body, timeout=600):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def run(url, prompts, concurrency, max_new, schema):
    def one(p):
        params = {"temperature": 0, "max_new_tokens": max_new}
        if schema is None:
            params["ignore_eos"] = True
        else:
            params["json_schema"] = json.dumps(schema)
        t0 = time.perf_counter()
        out = post(url + "/generate", {"text": p, "sampling_params": params})
        return out["meta_info"]["completion_tokens"], out["text"], t0, time.perf_counter()

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, prompts))
    wall = time.perf_counter() - start
    tokens = sum(r[0] for r in results)
    return tokens, wall, results, start


def full_batch_rate(results, start):
    """Output tokens per second while every client slot had a request: from the start of the pass
    to the last request's start (after that the batch only drains, and the requests that closed
    their JSON early leave slots idle in that tail). A request's tokens are counted pro rata over
    its duration (a decode step adds one token to every running request)."""
    end = max(r[2] for r in results)
    if end <= start:
        return None
    tokens = 0.0
    for n, _, t0, t1 in results:
        overlap = min(t1, end) - max(t0, start)
        if overlap > 0 and t1 > t0:
            tokens += n * overlap / (t1 - t0)
    return tokens / (end - start)


def counters(url):
    state = json.loads(urllib.request.urlopen(url + "/server_info", timeout=30).read())
    s = state["internal_states"][0]
    return (s["forward_steps_total"], s.get("jump_forward_tokens_total", 0),
            s.get("step_time_us", 0.0), s.get("model_time_us", 0.0),
            s.get("extend_steps_total", 0))


def per_step_us(before, after):
    """The scheduler's step and model time per step over a pass, in microseconds, from the
    server's averages since start (one timed cycle per step): where a constrained step's extra
    time goes, the device's (model: the launch and the sampling call that waits for the device)
    or the host's (the rest: masks waited for, grammar, stop checks, batch building)."""
    steps = after[0] - before[0]
    if steps <= 0:
        return None, None
    step = (after[2] * after[0] - before[2] * before[0]) / steps
    model = (after[3] * after[0] - before[3] * before[0]) / steps
    return round(step, 1), round(model, 1)


def start_server(args, extra):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([args.sable, "serve", "--model-path", args.model_path, "--port", str(port),
                               "--device", args.device, "--log-level", "warning", *extra])
    for _ in range(1200):
        try:
            urllib.request.urlopen(url + "/health", timeout=2)
            return server, url
        except OSError:
            if server.poll() is not None:
                sys.exit("sable serve exited before it was ready")
            time.sleep(0.5)
    server.terminate()
    sys.exit("sable serve was not ready after 10 minutes")


def timed_pass(url, prompts, args, schema):
    before = counters(url)
    steps0, jumped0 = before[:2]
    tokens, wall, results, start = run(url, prompts, args.concurrency, args.max_new_tokens, schema)
    after = counters(url)
    steps1, jumped1 = after[:2]
    step_us, model_us = per_step_us(before, after)
    # Characters per second too: jump-forward's merged boundary tokens make the same text shorter
    # in tokens.
    chars = sum(len(r[1]) for r in results)
    full = full_batch_rate(results, start)
    return {"tok_s": round(tokens / wall, 1), "chars_s": round(chars / wall, 1), "tokens": tokens,
            "full_batch_tok_s": round(full, 1) if full else None,
            "steps": steps1 - steps0,
            # Steps with a prefill chunk or a jump's extend: eager on a graph runner. Requests of
            # one length are admitted in bursts; those that close early are admitted one by one.
            "extend_steps": after[4] - before[4],
            "step_us": step_us, "model_us": model_us,
            "host_us": round(step_us - model_us, 1) if step_us is not None else None,
            "jumped_tokens": jumped1 - jumped0,
            "early_closed": sum(1 for r in results if r[0] < args.max_new_tokens),
            "complete": sum(1 for r in results if _parses(r[1])) if schema else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sable", default="build/bin/sable")
    ap.add_argument("--model-path", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--requests", type=int, default=128)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--no-compare", action="store_true",
                    help="skip the second server with --disable-jump-forward")
    args = ap.parse_args()

    prompts = [f"Describe film number {i} as JSON with a title, a year, tags and notes:"
               for i in range(args.requests)]
    report = {"concurrency": args.concurrency, "requests": args.requests}
    runs = [("jump_forward", [])] + ([] if args.no_compare else [("no_jump_forward",
                                                                   ["--disable-jump-forward"])])
    for name, extra in runs:
        server, url = start_server(args, extra)
        try:
            run(url, prompts[: args.concurrency], args.concurrency, 16, None)  # warm-up
            if "unconstrained" not in report:
                report["unconstrained"] = timed_pass(url, prompts, args, None)
            report[name] = timed_pass(url, prompts, args, SCHEMA)
            report[name]["ratio"] = round(report[name]["tok_s"] / report["unconstrained"]["tok_s"], 4)
            unc_full = report["unconstrained"]["full_batch_tok_s"]
            if unc_full and report[name]["full_batch_tok_s"]:
                report[name]["full_batch_ratio"] = round(report[name]["full_batch_tok_s"] / unc_full, 4)
        finally:
            server.terminate()
            server.wait(timeout=60)
    print(json.dumps(report))


def _parses(text):
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


if __name__ == "__main__":
    main()
