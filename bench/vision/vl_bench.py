#!/usr/bin/env python3
"""Image-request benchmark of issue 16: time to first token of one 1024x1024 image + 64 text
tokens, and the throughput of 64 concurrent image requests, on a Qwen2.5-VL-7B-shaped random
checkpoint. One command on the device (after the CUDA build):

  python3 bench/vision/vl_bench.py --device cuda

What it does:
  1. makes the checkpoint with `sable make-random-model --config bench/configs/qwen2.5-vl-7b.json`
     (the Hub's Qwen2.5-VL-7B-Instruct config.json) unless --model names one, and checks from the
     safetensors headers that the vision tower is there at the config's shape (every block, the
     patch embedding and the merger; its parameter count is reported);
  2. writes noise PNGs of --image-size (a different one per request, so the radix cache can never
     serve a repeated image) and starts `sable serve` with the real Qwen tokenizer of
     tests/golden/models/qwen2_tok (the 7B vocabulary of 152064 rows only adds unused ids);
  3. ttft: --ttft-runs sequential /generate requests (after --warmups) with max_new_tokens 1, the
     prompt a chat turn holding the image and exactly --text-tokens text tokens: median / p90;
  4. throughput: --requests concurrent requests, max_new_tokens --output-len, ignore_eos: output
     tokens per second and requests per second over the wall time.
Every answer is checked (prompt = text + image tokens as smart_resize predicts, the output length
asked for); a wrong one exits 1. One JSON line per measurement is printed and appended to
--results (default bench/results/vl_<device>.jsonl), with the server's warm-up lines (device
memory, the vision tower's reserved call).

The same script runs on the CPU with the tiny golden config in seconds; ctest `vl_bench_cpu`
(bench/vision/CMakeLists.txt) does that on every `make test`:
  python3 bench/vision/vl_bench.py --device cpu --config tests/golden/vl/model/config.json \
      --image-size 64 --requests 8 --ttft-runs 3 --output-len 4 --results /tmp/vl.jsonl
Nothing but the standard library.
"""
import argparse
import json
import math
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
CONFIG_7B = os.path.join(ROOT, "bench", "configs", "qwen2.5-vl-7b.json")
PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"


def noise_png(path, size):
    """An RGB PNG of random pixels (incompressible, so decoding costs what a photo's would)."""
    raw = b"".join(b"\x00" + os.urandom(size * 3) for _ in range(size))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def image_tokens(size, vision):
    """Placeholder tokens of a size x size image after transformers' smart_resize (default
    min/max pixels, as the server uses without a preprocessor_config.json)."""
    factor = vision.get("patch_size", 14) * vision.get("spatial_merge_size", 2)
    min_pixels, max_pixels = 56 * 56, 28 * 28 * 1280
    h = w = round(size / factor) * factor
    if h * w > max_pixels:
        beta = math.sqrt(size * size / max_pixels)
        h = w = max(factor, math.floor(size / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (size * size))
        h = w = math.ceil(size * beta / factor) * factor
    return (h // factor) * (w // factor)


def safetensors_shapes(model_dir):
    """{tensor name: shape} from the headers of every safetensors file of a checkpoint."""
    shapes = {}
    for name in sorted(os.listdir(model_dir)):
        if not name.endswith(".safetensors"):
            continue
        with open(os.path.join(model_dir, name), "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        shapes.update({k: v["shape"] for k, v in header.items() if k != "__metadata__"})
    return shapes


def check_vision_tower(model_dir, config):
    """Exits unless the checkpoint holds the vision tower at the config's shape; returns
    (vision parameters, all parameters)."""
    v = config["vision_config"]
    h, inter, m = v["hidden_size"], v["intermediate_size"], v.get("spatial_merge_size", 2)
    p, t = v.get("patch_size", 14), v.get("temporal_patch_size", 2)
    want = {"visual.patch_embed.proj.weight": [h, v.get("in_chans", v.get("in_channels", 3)), t, p, p],
            "visual.merger.mlp.0.weight": [h * m * m, h * m * m],
            "visual.merger.mlp.2.weight": [v["out_hidden_size"], h * m * m]}
    for b in range(v["depth"]):
        want[f"visual.blocks.{b}.attn.qkv.weight"] = [3 * h, h]
        want[f"visual.blocks.{b}.attn.proj.weight"] = [h, h]
        want[f"visual.blocks.{b}.mlp.gate_proj.weight"] = [inter, h]
        want[f"visual.blocks.{b}.mlp.down_proj.weight"] = [h, inter]
    shapes = safetensors_shapes(model_dir)
    wrong = [f"{k}: {shapes.get(k)} (want {s})" for k, s in want.items() if shapes.get(k) != s]
    if wrong:
        sys.exit(f"{model_dir}: the vision tower is missing or misshapen: " + "; ".join(wrong[:5]))
    if any(k.startswith(f"visual.blocks.{v['depth']}.") for k in shapes):
        sys.exit(f"{model_dir}: more vision blocks than depth {v['depth']}")
    count = lambda names: sum(math.prod(shapes[k]) for k in names)
    return count([k for k in shapes if k.startswith("visual.")]), count(shapes)


def post(url, body, timeout=1800):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, server, log_path, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            with open(log_path) as f:
                sys.exit(f"sable serve exited with {server.returncode}:\n{f.read()[-4000:]}")
        try:
            urllib.request.urlopen(url + "/health", timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"sable serve not ready after {timeout} s (log: {log_path})")


def prompt_with_text_tokens(url, n):
    """A chat turn holding the image placeholder and exactly n text tokens (the placeholder's
    three special tokens and the template's tokens count as text)."""
    head, tail = "<|im_start|>user\n" + PLACEHOLDER, "<|im_end|>\n<|im_start|>assistant\n"
    count = lambda text: post(url + "/tokenize", {"prompt": text})["count"] - 1  # less the pad
    filler = max(0, n - count(head + tail))
    text = head + " word" * filler + tail
    if count(text) != n:
        sys.exit(f"could not build a prompt of {n} text tokens (got {count(text)})")
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="build folder (bin/sable)")
    ap.add_argument("--sable-bin", help="the sable binary (default: BUILD/bin/sable)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--config", default=CONFIG_7B, help="config.json for make-random-model")
    ap.add_argument("--model", help="an existing checkpoint instead of a random one")
    ap.add_argument("--tokenizer", default=TOKENIZER)
    ap.add_argument("--image-size", type=int, default=1024)
    ap.add_argument("--text-tokens", type=int, default=64)
    ap.add_argument("--warmups", type=int, default=2)
    ap.add_argument("--ttft-runs", type=int, default=10)
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--output-len", type=int, default=128)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "sable_vl_bench"))
    ap.add_argument("--results", help="JSON lines appended here (default bench/results/vl_DEVICE.jsonl)")
    ap.add_argument("--ready-timeout", type=float, default=900)
    ap.add_argument("serve_args", nargs="*", help="extra `sable serve` flags, after --")
    args = ap.parse_args()
    sable = args.sable_bin or os.path.join(args.build, "bin", "sable")
    os.makedirs(args.work, exist_ok=True)

    model = args.model
    if model is None:
        stem = os.path.splitext(os.path.basename(args.config))[0]
        if stem == "config":  # a checkpoint's own config.json: name it by its folder
            stem = os.path.basename(os.path.dirname(os.path.abspath(args.config)))
        model = os.path.join(args.work, "random_" + stem)
        made = os.path.join(model, "config.json")
        if not os.path.exists(made) or open(made).read() != open(args.config).read():
            subprocess.run([sable, "make-random-model", "--config", args.config, "--out", model],
                           check=True)
    with open(os.path.join(model, "config.json")) as f:
        config = json.load(f)
    vision_params, params = check_vision_tower(model, config)
    want_image_tokens = image_tokens(args.image_size, config["vision_config"])

    images = []
    for i in range(args.warmups + args.ttft_runs + args.requests):
        path = os.path.join(args.work, f"noise_{args.image_size}_{i}.png")
        if not os.path.exists(path):
            noise_png(path, args.image_size)
        images.append(path)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = os.path.join(args.work, f"serve_{port}.log")
    log = open(log_path, "w")
    server = subprocess.Popen([sable, "serve", "--model-path", model, "--tokenizer-path",
                               args.tokenizer, "--device", args.device, "--port", str(port),
                               "--log-level", "info", *args.serve_args],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(url, server, log_path, args.ready_timeout)
        text = prompt_with_text_tokens(url, args.text_tokens)

        def one(image, max_new):
            t0 = time.perf_counter()
            out = post(url + "/generate", {"text": text, "image_data": image, "sampling_params": {
                "max_new_tokens": max_new, "ignore_eos": True, "temperature": 0}})
            meta = out["meta_info"]
            want = (args.text_tokens + want_image_tokens, max_new)
            if (meta["prompt_tokens"], meta["completion_tokens"]) != want:
                raise RuntimeError(f"prompt/completion tokens {meta['prompt_tokens']}/"
                                   f"{meta['completion_tokens']}, expected {want[0]}/{want[1]}")
            return time.perf_counter() - t0

        for image in images[:args.warmups]:
            one(image, 1)  # first shapes of the vision tower and the prefill
        lat = [one(image, 1) for image in images[args.warmups:args.warmups + args.ttft_runs]]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.requests) as pool:
            outs = list(pool.map(lambda im: one(im, args.output_len),
                                 images[args.warmups + args.ttft_runs:]))
        wall = time.perf_counter() - t0
        with open(log_path) as f:
            server_lines = [l.strip() for l in f if any(k in l for k in
                            ("warm-up:", "device memory:", "images:", "KV cache", "CUDA graphs"))]
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        tag = {"device": args.device, "model": os.path.basename(os.path.abspath(model)),
               "params": params, "vision_params": vision_params, "commit": commit,
               "image": f"{args.image_size}x{args.image_size}", "image_tokens": want_image_tokens,
               "text_tokens": args.text_tokens}
        lat_sorted = sorted(lat)
        results = [
            dict(tag, bench="ttft", runs=len(lat), median_s=statistics.median(lat),
                 p90_s=lat_sorted[max(0, math.ceil(0.9 * len(lat)) - 1)], min_s=lat_sorted[0]),
            dict(tag, bench="throughput", requests=args.requests, output_len=args.output_len,
                 wall_s=wall, output_tok_s=args.requests * args.output_len / wall,
                 requests_s=args.requests / wall, mean_latency_s=statistics.mean(outs),
                 server_log=server_lines)]
        out_file = args.results or os.path.join(ROOT, "bench", "results", f"vl_{args.device}.jsonl")
        with open(out_file, "a") as f:
            for r in results:
                print(json.dumps(r))
                f.write(json.dumps(r) + "\n")
    except Exception as e:  # noqa: BLE001 - any failed request fails the benchmark
        sys.exit(f"vl_bench: {e} (server log: {log_path})")
    finally:
        server.terminate()
        server.wait()
        log.close()


if __name__ == "__main__":
    main()
