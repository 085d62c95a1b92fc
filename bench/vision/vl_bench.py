#!/usr/bin/env python3
"""Image-request benchmark of issue 16 on a Qwen2.5-VL-7B-shaped random checkpoint (GPU).

Why: the issue's speed goal is the time to first token of one 1024x1024 image + 64 text tokens,
and the throughput of 64 concurrent image requests. This script makes the checkpoint (`sable
make-random-model` with the Hub's Qwen2.5-VL-7B-Instruct shapes), writes noise PNGs of 1024x1024
(a different one per request, so the radix cache cannot serve a repeated image), starts
`sable serve`, and measures over /generate:
  ttft        10 sequential requests (after 2 warm-ups), max_new_tokens 1: median / p90 latency
  throughput  64 concurrent requests, max_new_tokens 128, ignore_eos: output tokens per second
It prints one JSON line per measurement and appends it to bench/results/vl_<device>.jsonl.
Nothing but the standard library; the tokenizer is tests/golden/models/qwen2_tok's (the real Qwen
one: the 7B vocabulary of 152064 rows only adds unused ids).

  python3 bench/vision/vl_bench.py [--build build] [--device cuda] [--requests 64]
"""
import argparse
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOKENIZER = os.path.join(ROOT, "tests", "golden", "models", "qwen2_tok")
PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"

# Qwen/Qwen2.5-VL-7B-Instruct's config.json (Hub layout).
CONFIG_7B = {
    "architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl",
    "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
    "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
    "max_position_embeddings": 128000, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    "tie_word_embeddings": False, "hidden_act": "silu", "torch_dtype": "bfloat16",
    "sliding_window": 32768, "use_sliding_window": False, "max_window_layers": 28,
    "image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
    "vision_end_token_id": 151653, "bos_token_id": 151643, "eos_token_id": 151645,
    "vision_config": {"depth": 32, "hidden_act": "silu", "hidden_size": 1280,
                      "intermediate_size": 3420, "num_heads": 16, "in_chans": 3,
                      "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2,
                      "spatial_patch_size": 14, "window_size": 112,
                      "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2,
                      "temporal_patch_size": 2},
}


def noise_png(path, size=1024):
    raw = b"".join(b"\x00" + os.urandom(size * 3) for _ in range(size))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def post(url, body, timeout=600):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--output-len", type=int, default=128)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "sable_vl_bench"))
    args = ap.parse_args()
    sable = os.path.join(args.build, "bin", "sable")
    model = os.path.join(args.work, "qwen2_5_vl_7b")
    os.makedirs(args.work, exist_ok=True)
    if not os.path.exists(os.path.join(model, "config.json")):
        cfg = os.path.join(args.work, "config.json")
        with open(cfg, "w") as f:
            json.dump(CONFIG_7B, f)
        subprocess.run([sable, "make-random-model", "--config", cfg, "--out", model], check=True)
    images = []
    for i in range(args.requests + 12):
        p = os.path.join(args.work, f"noise_{i}.png")
        if not os.path.exists(p):
            noise_png(p)
        images.append(p)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = open(os.path.join(args.work, "serve.log"), "w")
    server = subprocess.Popen([sable, "serve", "--model-path", model, "--tokenizer-path", TOKENIZER,
                              "--device", args.device, "--port", str(port), "--log-level", "info"],
                             stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(3000):
            try:
                urllib.request.urlopen(url + "/health", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    sys.exit(f"sable serve exited: see {log.name}")
                time.sleep(0.2)
        text = ("<|im_start|>user\n" + PLACEHOLDER + " word" * 62 +
                "<|im_end|>\n<|im_start|>assistant\n")

        def one(image, max_new):
            t0 = time.perf_counter()
            out = post(url + "/generate", {"text": text, "image_data": image, "sampling_params": {
                "max_new_tokens": max_new, "ignore_eos": True, "temperature": 0}})
            return time.perf_counter() - t0, out["meta_info"]

        tag = {"device": args.device, "model": "Qwen2.5-VL-7B shape (random)", "image": "1024x1024",
               "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True).stdout.strip()}
        for image in images[:2]:
            one(image, 1)  # warm-up: first vision-tower and prefill shapes
        lat = []
        for image in images[2:12]:
            seconds, meta = one(image, 1)
            lat.append(seconds)
        results = [dict(tag, bench="ttft", prompt_tokens=meta["prompt_tokens"],
                        median_s=statistics.median(lat), p90_s=sorted(lat)[int(0.9 * len(lat)) - 1])]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.requests) as pool:
            outs = list(pool.map(lambda im: one(im, args.output_len), images[12:12 + args.requests]))
        wall = time.perf_counter() - t0
        tokens = sum(m["completion_tokens"] for _, m in outs)
        results.append(dict(tag, bench="throughput", requests=args.requests, output_len=args.output_len,
                            wall_s=wall, output_tok_s=tokens / wall,
                            mean_latency_s=statistics.mean(s for s, _ in outs)))
        out_file = os.path.join(ROOT, "bench", "results", f"vl_{args.device}.jsonl")
        with open(out_file, "a") as f:
            for r in results:
                print(json.dumps(r))
                f.write(json.dumps(r) + "\n")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
