#!/usr/bin/env python3
"""A Qwen2.5-0.5B-shaped GGUF with random weights, quantized Q8_0 by gguf-py, for the CPU bench.

Shapes from bench/configs/qwen2.5-0.5b.json (24 layers, hidden 896, 14/2 heads, intermediate 4864,
vocab 151936, q/k/v biases, tied embeddings); weights N(0, 0.02) from a fixed seed, norms 1,
biases 0; matrices Q8_0 (the embedding too), vectors F32. The vocabulary is the real Qwen one of
tests/golden/tokenizers/qwen3 padded to 151936 with [PAD] tokens, so that llama.cpp and Sable both
load the file. Usage: bench/cpu_decode/make_qwen_q8_gguf.py OUT.gguf
"""
import json
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

ROOT = Path(__file__).resolve().parents[2]


def main(out: str) -> None:
    cfg = json.loads((ROOT / "bench/configs/qwen2.5-0.5b.json").read_text())
    h, inter, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    heads, kv, vocab_n = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["vocab_size"]
    hd = h // heads
    w = gguf.GGUFWriter(out, "qwen2")
    w.add_name("qwen2.5-0.5b-shape-random")
    w.add_block_count(layers)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(h)
    w.add_feed_forward_length(inter)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    tj = json.loads((ROOT / "tests/golden/tokenizers/qwen3/tokenizer.json").read_text())
    vocab = dict(tj["model"]["vocab"])
    for a in tj["added_tokens"]:
        vocab[a["content"]] = a["id"]
    tokens = [f"[PAD{i}]" for i in range(vocab_n)]
    types = [gguf.TokenType.NORMAL] * vocab_n
    for tok, i in vocab.items():
        tokens[i] = tok
    for a in tj["added_tokens"]:
        types[a["id"]] = gguf.TokenType.CONTROL if a["special"] else gguf.TokenType.USER_DEFINED
    for i in range(len(vocab), vocab_n):
        types[i] = gguf.TokenType.UNUSED
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]])
    w.add_eos_token_id(cfg["eos_token_id"])
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_add_bos_token(False)

    rng = np.random.default_rng(0)

    def mat(name, rows, cols):
        x = (rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(0.02))
        w.add_tensor(name, gguf.quants.quantize(x, Q.Q8_0), raw_dtype=Q.Q8_0)

    def vec(name, n, value):
        w.add_tensor(name, np.full(n, value, dtype=np.float32))

    mat("token_embd.weight", vocab_n, h)
    vec("output_norm.weight", h, 1.0)
    for l in range(layers):
        p = f"blk.{l}."
        vec(p + "attn_norm.weight", h, 1.0)
        vec(p + "ffn_norm.weight", h, 1.0)
        mat(p + "attn_q.weight", heads * hd, h)
        mat(p + "attn_k.weight", kv * hd, h)
        mat(p + "attn_v.weight", kv * hd, h)
        vec(p + "attn_q.bias", heads * hd, 0.0)
        vec(p + "attn_k.bias", kv * hd, 0.0)
        vec(p + "attn_v.bias", kv * hd, 0.0)
        mat(p + "attn_output.weight", h, heads * hd)
        mat(p + "ffn_gate.weight", inter, h)
        mat(p + "ffn_up.weight", inter, h)
        mat(p + "ffn_down.weight", h, inter)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main(sys.argv[1])
