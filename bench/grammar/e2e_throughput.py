#!/usr/bin/env python3
"""Issue 20's end-to-end bar: JSON-schema decoding at batch 32 against unconstrained decoding.

Starts `sable serve` with a model, sends the same prompts at a fixed concurrency through /generate
twice, unconstrained and with a JSON schema, and prints the output tokens per second of each and
their ratio (the bar: constrained >= 95 % of unconstrained). Both runs ask for the same number of
new tokens; the schema allows long outputs (an array of free strings) so that the grammar, not an
early EOS, decides how many tokens are generated. Standard library only.

  python3 bench/grammar/e2e_throughput.py --sable build/bin/sable --model-path MODEL \
      [--device cuda] [--concurrency 32] [--requests 128] [--max-new-tokens 256]
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
        out = post(url + "/generate", {"text": p, "sampling_params": params})
        return out["meta_info"]["completion_tokens"], out["text"]

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, prompts))
    wall = time.perf_counter() - start
    tokens = sum(n for n, _ in results)
    return tokens, wall, results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sable", default="build/bin/sable")
    ap.add_argument("--model-path", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--requests", type=int, default=128)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    args = ap.parse_args()

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([args.sable, "serve", "--model-path", args.model_path, "--port", str(port),
                               "--device", args.device, "--log-level", "warning"])
    try:
        for _ in range(1200):
            try:
                urllib.request.urlopen(url + "/health", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    sys.exit("sable serve exited before it was ready")
                time.sleep(0.5)
        prompts = [f"Describe film number {i} as JSON with a title, a year, tags and notes:"
                   for i in range(args.requests)]
        run(url, prompts[: args.concurrency], args.concurrency, 16, None)  # warm-up
        free_tok, free_s, _ = run(url, prompts, args.concurrency, args.max_new_tokens, None)
        json_tok, json_s, results = run(url, prompts, args.concurrency, args.max_new_tokens, SCHEMA)
        complete = sum(1 for _, text in results if _parses(text))
        free_rate, json_rate = free_tok / free_s, json_tok / json_s
        print(json.dumps({
            "concurrency": args.concurrency, "requests": args.requests,
            "unconstrained_tok_s": round(free_rate, 1), "json_schema_tok_s": round(json_rate, 1),
            "ratio": round(json_rate / free_rate, 4), "json_outputs_complete": complete,
            "json_tokens": json_tok, "unconstrained_tokens": free_tok}))
    finally:
        server.terminate()
        server.wait(timeout=60)


def _parses(text):
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


if __name__ == "__main__":
    main()
