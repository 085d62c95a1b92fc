#!/usr/bin/env python3
"""Random-weight GGUF files of the CPU bench's two shapes, with the Python standard library only.

The side-by-side with llama.cpp (vs_llamacpp.py, device_host.sh) needs the same file for both
engines on machines without internet or pip packages (the 16-core device host), so this writes
GGUF v3 itself instead of using gguf-py and numpy:
  qwen-q8_0   Qwen2.5-0.5B's shape (bench/configs/qwen2.5-0.5b.json: 24 layers, hidden 896, 14/2
              heads, intermediate 4864, vocab 151936, q/k/v biases, tied embeddings), every matrix
              Q8_0; about 531 MB.
  smollm-q4_1 SmolLM2-135M-Instruct's shape and types (the default model: llama, 30 layers, hidden
              576, 9/3 heads, intermediate 1536, vocab 49152, tied embeddings), the matrices Q4_1
              and the embedding Q8_0 as in the released file; about 90 MB.
Quantized blocks hold seeded random quants under one fixed scale (weights of about N(0, 0.02)):
decode speed depends on the shapes and types, not on the values. Norms are 1, biases 0. The
vocabulary is the real Qwen one of tests/golden/tokenizers/qwen3 (padded with [PAD] tokens to
151936; for the SmolLM2 shape its first 49152 tokens with the merges among them), so both engines
load the files. Usage: bench/cpu_decode/make_bench_gguf.py {qwen-q8_0|smollm-q4_1} OUT.gguf
"""
import json
import lzma
import random
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALIGN = 32
F32, Q4_1, Q8_0 = 0, 3, 8  # ggml types
BLOCK = {Q4_1: (32, 20), Q8_0: (32, 34)}  # elements, bytes
U32, I32, F32V, BOOL, STRING, ARRAY = 4, 5, 6, 7, 8, 9  # GGUF value types

SHAPES = {
    "qwen-q8_0": dict(arch="qwen2", layers=24, hidden=896, heads=14, kv=2, inter=4864,
                      vocab=151936, rope=1000000.0, eps=1e-6, bias=True, mat=Q8_0, embd=Q8_0,
                      pre="qwen2", file_type=7),
    "smollm-q4_1": dict(arch="llama", layers=30, hidden=576, heads=9, kv=3, inter=1536,
                        vocab=49152, rope=100000.0, eps=1e-5, bias=False, mat=Q4_1, embd=Q8_0,
                        pre="qwen2", file_type=3),
}


def gguf_string(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gguf_value(vtype, v):
    if vtype == U32:
        return struct.pack("<I", v)
    if vtype == I32:
        return struct.pack("<i", v)
    if vtype == F32V:
        return struct.pack("<f", v)
    if vtype == BOOL:
        return struct.pack("<?", v)
    if vtype == STRING:
        return gguf_string(v)
    etype, items = v
    return struct.pack("<IQ", etype, len(items)) + b"".join(gguf_value(etype, x) for x in items)


def random_blocks(rng, ggml_type, rows, cols):
    """rows x cols quantized: random quants, the block scale (and Q4_1 min) fixed."""
    elems, nbytes = BLOCK[ggml_type]
    size = rows * cols // elems * nbytes
    data = bytearray()
    while len(data) < size:
        data += rng.randbytes(min(8 << 20, size - len(data)))
    if ggml_type == Q8_0:  # q uniform in [-128, 127]: std 74 steps
        fields = [struct.pack("<e", 0.02 / 74)]
    else:  # q uniform in [0, 15]: mean 7.5, std 4.6 steps
        d = 0.02 / 4.6
        fields = [struct.pack("<e", d), struct.pack("<e", -7.5 * d)]
    count = size // nbytes
    for f, field in enumerate(fields):
        for byte in range(2):
            data[2 * f + byte::nbytes] = bytes([field[byte]]) * count
    return bytes(data)


def vocabulary(n):
    # A git checkout holds the tokenizer xz-packed (cmake/SableGoldenData.cmake unpacks it at
    # configure time): read whichever is there.
    path = ROOT / "tests/golden/tokenizers/qwen3/tokenizer.json"
    text = path.read_text() if path.exists() else lzma.open(f"{path}.xz", "rt").read()
    tj = json.loads(text)
    vocab = dict(tj["model"]["vocab"])
    special = {a["id"]: a for a in tj["added_tokens"]}
    for a in special.values():
        vocab[a["content"]] = a["id"]
    tokens = [f"[PAD{i}]" for i in range(n)]
    types = [1] * n  # NORMAL
    for tok, i in vocab.items():
        if i < n:
            tokens[i] = tok
            if i in special:
                types[i] = 3 if special[i]["special"] else 4  # CONTROL / USER_DEFINED
    for i in range(len(vocab), n):
        types[i] = 2  # UNUSED
    kept = {t for t in tokens}
    merges = []
    for m in tj["model"]["merges"]:
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        if a in kept and b in kept and a + b in kept:
            merges.append(f"{a} {b}")
    return tokens, types, merges


def main(shape, out):
    c = SHAPES[shape]
    arch, h, hd = c["arch"], c["hidden"], c["hidden"] // c["heads"]
    tokens, types, merges = vocabulary(c["vocab"])
    eos = 151643 if c["vocab"] > 151643 else 0
    kv = [
        ("general.architecture", STRING, arch),
        ("general.name", STRING, f"{shape}-random"),
        ("general.file_type", U32, c["file_type"]),
        (f"{arch}.block_count", U32, c["layers"]),
        (f"{arch}.context_length", U32, 8192),
        (f"{arch}.embedding_length", U32, h),
        (f"{arch}.feed_forward_length", U32, c["inter"]),
        (f"{arch}.attention.head_count", U32, c["heads"]),
        (f"{arch}.attention.head_count_kv", U32, c["kv"]),
        (f"{arch}.rope.freq_base", F32V, c["rope"]),
        (f"{arch}.attention.layer_norm_rms_epsilon", F32V, c["eps"]),
        ("tokenizer.ggml.model", STRING, "gpt2"),
        ("tokenizer.ggml.pre", STRING, c["pre"]),
        ("tokenizer.ggml.tokens", ARRAY, (STRING, tokens)),
        ("tokenizer.ggml.token_type", ARRAY, (I32, types)),
        ("tokenizer.ggml.merges", ARRAY, (STRING, merges)),
        ("tokenizer.ggml.eos_token_id", U32, eos),
        ("tokenizer.ggml.bos_token_id", U32, eos),
        ("tokenizer.ggml.add_bos_token", BOOL, False),
    ]
    rng = random.Random(0)
    tensors = []  # (name, ggml type, dims ne0 first, bytes)

    def mat(name, rows, cols, ggml_type=c["mat"]):
        tensors.append((name, ggml_type, (cols, rows), random_blocks(rng, ggml_type, rows, cols)))

    def vec(name, n, value):
        tensors.append((name, F32, (n,), struct.pack(f"<{n}f", *([value] * n))))

    mat("token_embd.weight", c["vocab"], h, c["embd"])
    vec("output_norm.weight", h, 1.0)
    for layer in range(c["layers"]):
        p = f"blk.{layer}."
        vec(p + "attn_norm.weight", h, 1.0)
        vec(p + "ffn_norm.weight", h, 1.0)
        mat(p + "attn_q.weight", c["heads"] * hd, h)
        mat(p + "attn_k.weight", c["kv"] * hd, h)
        mat(p + "attn_v.weight", c["kv"] * hd, h)
        if c["bias"]:
            vec(p + "attn_q.bias", c["heads"] * hd, 0.0)
            vec(p + "attn_k.bias", c["kv"] * hd, 0.0)
            vec(p + "attn_v.bias", c["kv"] * hd, 0.0)
        mat(p + "attn_output.weight", h, c["heads"] * hd)
        mat(p + "ffn_gate.weight", c["inter"], h)
        mat(p + "ffn_up.weight", c["inter"], h)
        mat(p + "ffn_down.weight", h, c["inter"])

    with open(out, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)))
        for key, vtype, value in kv:
            f.write(gguf_string(key) + struct.pack("<I", vtype) + gguf_value(vtype, value))
        offset = 0
        for name, ggml_type, dims, data in tensors:
            f.write(gguf_string(name) + struct.pack("<I", len(dims)))
            f.write(struct.pack(f"<{len(dims)}Q", *dims) + struct.pack("<IQ", ggml_type, offset))
            offset += (len(data) + ALIGN - 1) // ALIGN * ALIGN
        f.write(b"\0" * (-f.tell() % ALIGN))
        for _, _, _, data in tensors:
            f.write(data + b"\0" * (-len(data) % ALIGN))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in SHAPES:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(SHAPES)}}} OUT.gguf")
    main(sys.argv[1], sys.argv[2])
