"""Costs of the Python face (bench/NOTES.md, "Python engine"):

1. Per-request overhead of sable.Engine.generate over the C++ engine: the wall time of a
   one-token request seen from Python minus the engine's own e2e_latency of it (measured in C++
   from submit to the final token), i.e. what the binding, the /generate parsing and the JSON in
   and out add, in microseconds.
2. Output throughput of N concurrent async_generate calls (streamed and not) against the same
   load sent over HTTP to `sable serve` (the C++ client `sable bench serving`), same model,
   same options, same prompt and output lengths.

    PYTHONPATH=build/python python3 bench/python/engine_bench.py --sable build/bin/sable
"""

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import sable

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def overhead(llm, n):
    ids = [1000 + i for i in range(16)]
    params = {"max_new_tokens": 1, "temperature": 0, "ignore_eos": True}
    for _ in range(20):
        llm.generate(input_ids=ids, sampling_params=params)
    extra, wall = [], []
    for _ in range(n):
        start = time.perf_counter()
        out = llm.generate(input_ids=ids, sampling_params=params)
        elapsed = time.perf_counter() - start
        wall.append(elapsed)
        extra.append(elapsed - out["meta_info"]["e2e_latency"])
    return statistics.median(extra) * 1e6, statistics.median(wall) * 1e6


def prompts(n, input_len, seed):
    rng = random.Random(seed)
    return [[rng.randint(1000, 20000) for _ in range(input_len)] for _ in range(n)]


def async_throughput(llm, batch, output_len, stream):
    params = {"max_new_tokens": output_len, "ignore_eos": True, "temperature": 0}

    async def one(ids):
        if not stream:
            return (await llm.async_generate(input_ids=ids, sampling_params=params))[
                "meta_info"]["completion_tokens"]
        last = None
        async for chunk in await llm.async_generate(input_ids=ids, sampling_params=params,
                                                    stream=True):
            last = chunk
        return last["meta_info"]["completion_tokens"]

    async def main():
        return await asyncio.gather(*[one(ids) for ids in batch])

    start = time.perf_counter()
    tokens = sum(asyncio.run(main()))
    return tokens / (time.perf_counter() - start)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_throughput(binary, model, options, n, input_len, output_len, seed):
    port = free_port()
    args = [binary, "serve", "--model-path", model, "--host", "127.0.0.1", "--port", str(port)]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except Exception:
                time.sleep(0.2)
        with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as out:
            subprocess.run([binary, "bench", "serving", "--base-url", f"http://127.0.0.1:{port}",
                            "--num-prompts", str(n), "--max-concurrency", str(n),
                            "--random-input-len", str(input_len),
                            "--random-output-len", str(output_len), "--seed", str(seed),
                            "--output-file", out.name], check=True, stdout=subprocess.DEVNULL)
            return json.loads(out.read().splitlines()[-1])["output_throughput"]
    finally:
        server.terminate()
        server.wait(60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "tests/golden/models/qwen2_tok"))
    ap.add_argument("--sable", default=os.path.join(ROOT, "build/bin/sable"))
    ap.add_argument("--num-prompts", type=int, default=256)
    ap.add_argument("--input-len", type=int, default=64)
    ap.add_argument("--output-len", type=int, default=32)
    ap.add_argument("--overhead-requests", type=int, default=300)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    options = dict(device=a.device, max_total_tokens=65536, max_running_requests=a.num_prompts)
    llm = sable.Engine(model_path=a.model, **options)
    extra_us, wall_us = overhead(llm, a.overhead_requests)
    print(f"generate() overhead over the C++ engine: {extra_us:.0f} us per request "
          f"(median; whole call {wall_us:.0f} us, 16-token prompt, 1 new token)")
    batch = prompts(a.num_prompts, a.input_len, a.seed)
    async_tokens = async_throughput(llm, batch, a.output_len, stream=False)
    async_stream_tokens = async_throughput(llm, batch, a.output_len, stream=True)
    llm.shutdown()
    print(f"{a.num_prompts} concurrent async_generate: {async_tokens:.0f} output tok/s "
          f"(stream: {async_stream_tokens:.0f})")
    http_tokens = http_throughput(a.sable, a.model, options, a.num_prompts, a.input_len,
                                  a.output_len, a.seed)
    print(f"{a.num_prompts} concurrent HTTP /generate (stream): {http_tokens:.0f} output tok/s")


if __name__ == "__main__":
    sys.exit(main())
