#!/usr/bin/env python3
"""Reference GGUF files for the GGUF loader's tests, made with llama.cpp's own gguf-py.

  models OUT   the golden checkpoints of tests/golden/models (llama, qwen2, qwen3) written as GGUF the
               way llama.cpp's convert_hf_to_gguf.py writes them (llama q/k rows permuted, llama 3
               rope scaling as rope_freqs.weight, norms in F32), in F32/F16/BF16 and quantized with
               gguf.quants (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1); plus `kquant.gguf`, a random llama-shaped
               model whose rows are 256 wide so that every K-quant (Q2_K..Q6_K) is used, quantized
               here (gguf-py only dequantizes K-quants). reference.json records, for every tensor
               under its Hugging Face name, the FNV-1a 64 hash of gguf-py's numpy dequantization
               (float32 little-endian, q/k permutation undone) so the C++ reader can be checked bit
               for bit without shipping the float tensors.
  vocab OUT    vocabulary-only GGUF files from the golden tokenizers (tests/golden/tokenizers):
               llama3 and qwen3 as tokenizer.ggml.model gpt2 (pre llama-bpe / qwen2), llama2 as
               SentencePiece (llama) with scores derived from the merge ranks of its tokenizer.json.

The model files are committed under tests/golden/gguf; the vocab files are made by ctest into the
build tree (they are large and derived from files already in the repository).
Usage: scripts/make_gguf_golden.py models tests/golden/gguf
       scripts/make_gguf_golden.py vocab build/gguf_vocab
"""
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
QK_K = 256


def read_safetensors(path):
    """name -> float32 array (bf16/f16/f32 stored)."""
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = np.frombuffer(data[base + b:base + e], dtype=np.uint8)
        if info["dtype"] == "BF16":
            arr = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] == "F16":
            arr = raw.view(np.float16).astype(np.float32)
        else:
            arr = raw.view(np.float32)
        out[name] = arr.reshape(info["shape"]).copy()
    return out


def fnv1a64(arr):
    h = 0xcbf29ce484222325
    for byte in np.ascontiguousarray(arr, dtype="<f4").tobytes():
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def permute(w, n_head):
    """llama.cpp's LlamaModel.permute: interleave the two rotary halves of each head's rows."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def unpermute(w, n_head):
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


# ----------------------------------------------------------------------------------------------
# K-quant packing (gguf-py has no K-quant quantizer). Simple per-group scales, valid encodings.

def _safe_div(a, b):
    return np.where(b == 0, 0, a / np.where(b == 0, 1, b))


def _f16(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16)


def _pack_scale_min_k4(sc, mn):
    """8 six-bit scales and mins per block -> 12 bytes (inverse of get_scale_min_k4)."""
    s = np.zeros((sc.shape[0], 12), dtype=np.uint8)
    for j in range(4):
        s[:, j] = (sc[:, j] & 63) | ((sc[:, j + 4] >> 4) << 6)
        s[:, j + 4] = (mn[:, j] & 63) | ((mn[:, j + 4] >> 4) << 6)
        s[:, j + 8] = (sc[:, j + 4] & 0x0F) | ((mn[:, j + 4] & 0x0F) << 4)
    return s


def _affine(x, groups, qmax, smax):
    """Per group: x ~ d*sc*q - dmin*m with q in [0, qmax], sc and m in [0, smax]."""
    n = x.shape[0]
    g = x.reshape(n, groups, -1)
    mn_f = np.maximum(0, -g.min(axis=-1))
    sc_f = (g.max(axis=-1) + mn_f) / qmax
    d = _f16(sc_f.max(axis=-1) / smax).astype(np.float32)
    dmin = _f16(mn_f.max(axis=-1) / smax).astype(np.float32)
    sc = np.clip(np.round(_safe_div(sc_f, d[:, None])), 0, smax).astype(np.uint8)
    m = np.clip(np.round(_safe_div(mn_f, dmin[:, None])), 0, smax).astype(np.uint8)
    dl = (d[:, None] * sc)[..., None]
    ml = (dmin[:, None] * m)[..., None]
    q = np.clip(np.round(_safe_div(g + ml, dl)), 0, qmax).astype(np.uint8).reshape(n, QK_K)
    return d, dmin, sc, m, q


def _symmetric(x, groups, qmin, qmax, smax):
    n = x.shape[0]
    g = x.reshape(n, groups, -1)
    sc_f = np.abs(g).max(axis=-1) / max(-qmin, qmax)
    d = _f16(sc_f.max(axis=-1) / smax).astype(np.float32)
    sc = np.clip(np.round(_safe_div(sc_f, d[:, None])), -smax - 1, smax).astype(np.int32)
    dl = (d[:, None] * sc)[..., None]
    q = np.clip(np.round(_safe_div(g, dl)), qmin, qmax).astype(np.int32).reshape(n, QK_K)
    return d, sc, q


def quant_q2_k(x):
    d, dmin, sc, m, q = _affine(x, 16, 3, 15)
    qs = np.zeros((x.shape[0], 64), dtype=np.uint8)
    for e in range(QK_K):
        c, s, i = e // 128, (e % 128) // 32, e % 32
        qs[:, c * 32 + i] |= (q[:, e] << (2 * s)).astype(np.uint8)
    scales = (sc & 0x0F) | (m << 4)
    return np.concatenate([scales, qs, _f16(d)[:, None].view(np.uint8),
                           _f16(dmin)[:, None].view(np.uint8)], axis=1)


def quant_q3_k(x):
    d, sc, q = _symmetric(x, 16, -4, 3, 31)
    u = (q + 4).astype(np.uint8)  # 0..7: two low bits in qs, the third in hmask
    qs = np.zeros((x.shape[0], 64), dtype=np.uint8)
    hmask = np.zeros((x.shape[0], 32), dtype=np.uint8)
    for e in range(QK_K):
        c, s, i = e // 128, (e % 128) // 32, e % 32
        qs[:, c * 32 + i] |= ((u[:, e] & 3) << (2 * s)).astype(np.uint8)
        hmask[:, i] |= ((u[:, e] >> 2) << (e // 32)).astype(np.uint8)
    sc6 = (sc + 32).astype(np.uint8)
    scales = np.zeros((x.shape[0], 12), dtype=np.uint8)
    for k in range(16):
        if k < 8:
            scales[:, k] |= sc6[:, k] & 0x0F
        else:
            scales[:, k - 8] |= (sc6[:, k] & 0x0F) << 4
        scales[:, 8 + k % 4] |= ((sc6[:, k] >> 4) & 3) << (2 * (k // 4))
    return np.concatenate([hmask, qs, scales, _f16(d)[:, None].view(np.uint8)], axis=1)


def quant_q45_k(x, five):
    d, dmin, sc, m, q = _affine(x, 8, 31 if five else 15, 63)
    qs = np.zeros((x.shape[0], 128), dtype=np.uint8)
    qh = np.zeros((x.shape[0], 32), dtype=np.uint8)
    for j in range(8):
        for i in range(32):
            v = q[:, j * 32 + i]
            qs[:, (j // 2) * 32 + i] |= ((v & 0x0F) << (4 * (j % 2))).astype(np.uint8)
            if five:
                qh[:, i] |= (((v >> 4) & 1) << j).astype(np.uint8)
    parts = [_f16(d)[:, None].view(np.uint8), _f16(dmin)[:, None].view(np.uint8),
             _pack_scale_min_k4(sc, m)]
    if five:
        parts.append(qh)
    parts.append(qs)
    return np.concatenate(parts, axis=1)


def quant_q6_k(x):
    d, sc, q = _symmetric(x, 16, -32, 31, 127)
    u = (q + 32).astype(np.uint8)
    ql = np.zeros((x.shape[0], 128), dtype=np.uint8)
    qh = np.zeros((x.shape[0], 64), dtype=np.uint8)
    for e in range(QK_K):
        c, r = e // 128, e % 128
        ql[:, c * 64 + r % 64] |= ((u[:, e] & 0x0F) << (4 * (r // 64))).astype(np.uint8)
        qh[:, c * 32 + r % 32] |= ((u[:, e] >> 4) << (2 * (r // 32))).astype(np.uint8)
    return np.concatenate([ql, qh, sc.astype(np.int8).view(np.uint8),
                           _f16(d)[:, None].view(np.uint8)], axis=1)


KQUANTS = {Q.Q2_K: quant_q2_k, Q.Q3_K: quant_q3_k, Q.Q4_K: lambda x: quant_q45_k(x, False),
           Q.Q5_K: lambda x: quant_q45_k(x, True), Q.Q6_K: quant_q6_k}


def quantize(w, qtype):
    """Row-major [rows, cols] float32 -> the GGUF byte rows (cols must fit the block size)."""
    if qtype in KQUANTS:
        blocks = w.reshape(-1, QK_K).astype(np.float32)
        packed = KQUANTS[qtype](blocks)
        return packed.reshape(w.shape[0], -1)
    return gguf.quants.quantize(w.astype(np.float32), qtype)


# ----------------------------------------------------------------------------------------------
# Models

LAYER = {"input_layernorm.weight": "attn_norm.weight",
         "post_attention_layernorm.weight": "ffn_norm.weight",
         "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
         "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
         "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias",
         "self_attn.v_proj.bias": "attn_v.bias", "self_attn.q_norm.weight": "attn_q_norm.weight",
         "self_attn.k_norm.weight": "attn_k_norm.weight", "mlp.gate_proj.weight": "ffn_gate.weight",
         "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight"}


def gguf_name(hf):
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    parts = hf.split(".", 3)  # model, layers, N, rest
    return f"blk.{parts[2]}.{LAYER[parts[3]]}"


def llama3_rope_factors(cfg):
    """convert_hf_to_gguf.py LlamaModel.generate_extra_tensors for rope_type llama3."""
    rs = cfg["rope_scaling"]
    base = cfg.get("rope_theta", 10000.0)
    dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    factor, low, high = rs.get("factor", 8.0), rs.get("low_freq_factor", 1.0), rs.get("high_freq_factor", 4.0)
    old = rs.get("original_max_position_embeddings", 8192)
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < old / high:
            out.append(1)
        elif wavelen > old / low:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


FILE_TYPES = {Q.F32: gguf.LlamaFileType.ALL_F32, Q.F16: gguf.LlamaFileType.MOSTLY_F16,
              Q.BF16: gguf.LlamaFileType.MOSTLY_BF16, Q.Q8_0: gguf.LlamaFileType.MOSTLY_Q8_0,
              Q.Q4_0: gguf.LlamaFileType.MOSTLY_Q4_0, Q.Q4_1: gguf.LlamaFileType.MOSTLY_Q4_1,
              Q.Q5_0: gguf.LlamaFileType.MOSTLY_Q5_0, Q.Q5_1: gguf.LlamaFileType.MOSTLY_Q5_1,
              Q.Q4_K: gguf.LlamaFileType.MOSTLY_Q4_K_M}


def write_model(path, arch, cfg, weights, choose_type, file_type):
    """Writes `weights` (HF names, float32) as GGUF; returns {hf name: hash of the dequantization}."""
    w = gguf.GGUFWriter(str(path), arch)
    heads, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_rope_freq_base(cfg.get("rope_theta", 10000.0))
    w.add_layer_norm_rms_eps(cfg.get("rms_norm_eps", 1e-6))
    w.add_rope_dimension_count(head_dim)
    if cfg.get("head_dim"):
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    w.add_file_type(FILE_TYPES[file_type])
    rs = cfg.get("rope_scaling") or {}
    if rs.get("rope_type") == "llama3":
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(cfg))
    hashes = {}
    for hf in sorted(weights):
        t = weights[hf].astype(np.float32)
        if arch == "llama" and hf.endswith("q_proj.weight"):
            t = permute(t, heads)
        elif arch == "llama" and hf.endswith("k_proj.weight"):
            t = permute(t, kv)
        qtype = Q.F32 if t.ndim == 1 else choose_type(hf, t)
        if qtype == Q.F32:
            stored = t
        elif qtype == Q.F16:
            stored = t.astype(np.float16)
        elif qtype == Q.BF16:
            stored = gguf.quants.quantize(t, Q.BF16)
        else:
            stored = quantize(t, qtype)
        w.add_tensor(gguf_name(hf), stored, raw_dtype=qtype if qtype not in (Q.F32, Q.F16) else None)
        # The reference: gguf-py's dequantization of exactly the stored bytes, in HF layout.
        deq = gguf.quants.dequantize(stored.view(np.uint8) if qtype not in (Q.F32, Q.F16) else stored,
                                     qtype).reshape(t.shape).astype(np.float32)
        if arch == "llama" and hf.endswith("q_proj.weight"):
            deq = unpermute(deq, heads)
        elif arch == "llama" and hf.endswith("k_proj.weight"):
            deq = unpermute(deq, kv)
        err = np.abs(deq - weights[hf]).max() / max(np.abs(weights[hf]).max(), 1e-12)
        assert err < 0.6, f"{path.name} {hf}: quantization error {err}"
        hashes[hf] = {"type": qtype.name, "fnv1a64": fnv1a64(deq)}
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return hashes


def block_type(qtype):
    """Quantize matrices whose rows fit the block size; keep the others F16 (as llama.cpp falls
    back when a row does not divide)."""
    def choose(hf, t):
        return qtype if t.shape[-1] % 32 == 0 else Q.F16
    return choose


def kquant_model():
    rng = np.random.default_rng(20251205)
    cfg = {"hidden_size": 256, "intermediate_size": 256, "num_attention_heads": 4,
           "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 256,
           "max_position_embeddings": 256, "rope_theta": 10000.0, "rms_norm_eps": 1e-5}
    h, i, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    kvd = 2 * 64
    shapes = {"model.embed_tokens.weight": (v, h), "lm_head.weight": (v, h),
              "model.norm.weight": (h,)}
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        shapes.update({p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
                       p + "self_attn.q_proj.weight": (h, h), p + "self_attn.k_proj.weight": (kvd, h),
                       p + "self_attn.v_proj.weight": (kvd, h), p + "self_attn.o_proj.weight": (h, h),
                       p + "mlp.gate_proj.weight": (i, h), p + "mlp.up_proj.weight": (i, h),
                       p + "mlp.down_proj.weight": (h, i)})
    weights = {}
    for name, shape in shapes.items():
        if len(shape) == 1:
            weights[name] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            weights[name] = (0.08 * rng.standard_normal(shape)).astype(np.float32)
    types = {"q_proj": Q.Q2_K, "k_proj": Q.Q3_K, "v_proj": Q.Q4_K, "o_proj": Q.Q5_K,
             "gate_proj": Q.Q6_K, "up_proj": Q.Q4_K, "down_proj": Q.Q5_K,
             "embed_tokens": Q.Q6_K, "lm_head": Q.Q3_K}

    def choose(hf, t):
        return next(q for key, q in types.items() if key in hf)
    return cfg, weights, choose


def make_models(out):
    out.mkdir(parents=True, exist_ok=True)
    reference = {}
    plan = [("llama", [Q.F32, Q.F16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1]),
            ("qwen2", [Q.F16, Q.Q8_0]), ("qwen3", [Q.BF16, Q.Q5_1])]
    for model, types in plan:
        src = GOLDEN / "models" / model
        cfg = json.loads((src / "config.json").read_text())
        weights = read_safetensors(src / "model.safetensors")
        for qtype in types:
            path = out / f"{model}-{qtype.name.lower()}.gguf"
            choose = (lambda hf, t, q=qtype: q) if qtype in (Q.F32, Q.F16, Q.BF16) else block_type(qtype)
            reference[path.name] = {"model": model, "tensors": write_model(path, model, cfg, weights, choose, qtype)}
            print(f"wrote {path} ({path.stat().st_size} bytes)")
    cfg, weights, choose = kquant_model()
    path = out / "kquant.gguf"
    reference[path.name] = {"model": None, "tensors": write_model(path, "llama", cfg, weights, choose, Q.Q4_K)}
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    (out / "reference.json").write_text(json.dumps(reference, indent=1, sort_keys=True) + "\n")


# ----------------------------------------------------------------------------------------------
# Vocabularies

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, BYTE = 1, 2, 3, 4, 6


def make_vocab(name, out):
    src = GOLDEN / "tokenizers" / name
    tj = json.loads((src / "tokenizer.json").read_text())
    tc = json.loads((src / "tokenizer_config.json").read_text())
    model = tj["model"]
    vocab = dict(model["vocab"])
    for a in tj["added_tokens"]:
        vocab[a["content"]] = a["id"]
    n = max(vocab.values()) + 1
    tokens = [f"[PAD{i}]" for i in range(n)]
    for tok, i in vocab.items():
        tokens[i] = tok
    types = [NORMAL] * n
    for a in tj["added_tokens"]:
        types[a["id"]] = CONTROL if a["special"] else USER_DEFINED
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    w = gguf.GGUFWriter(str(out / f"{name}.gguf"), "llama")
    spm = model.get("byte_fallback", False)

    def special(key):
        tok = tc.get(key)
        tok = tok["content"] if isinstance(tok, dict) else tok
        return vocab.get(tok) if tok else None
    if spm:
        # SentencePiece scores: a piece formed by merge k scores -k, so ranking merges by the
        # score of the piece they form gives back the merge order.
        score = [0.0] * n
        seen = set()
        for rank, m in enumerate(merges):
            piece = m.replace(" ", "")
            if piece in vocab and piece not in seen:
                seen.add(piece)
                score[vocab[piece]] = -float(rank)
        for tok, i in vocab.items():
            if tok.startswith("<0x") and len(tok) == 6:
                types[i] = BYTE
        unk = vocab.get(model.get("unk_token"))
        if unk is not None:
            types[unk] = UNKNOWN
        w.add_tokenizer_model("llama")
        w.add_token_list(tokens)
        w.add_token_scores(score)
        w.add_token_types(types)
        w.add_add_space_prefix(True)
        if unk is not None:
            w.add_unk_token_id(unk)
    else:
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre({"llama3": "llama-bpe", "qwen3": "qwen2"}[name])
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_merges(merges)
    for key, add in (("bos_token", w.add_bos_token_id), ("eos_token", w.add_eos_token_id),
                     ("pad_token", w.add_pad_token_id)):
        if special(key) is not None:
            add(special(key))
    # Whether HF adds BOS: the post-processor of tokenizer.json, or add_bos_token.
    post = json.dumps(tj.get("post_processor"))
    bos = special("bos_token")
    add_bos = tc.get("add_bos_token", bos is not None and f'"ids": [{bos}]' in post)
    w.add_add_bos_token(bool(add_bos))
    if isinstance(tc.get("chat_template"), str):
        w.add_chat_template(tc["chat_template"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("models", "vocab"):
        sys.exit(__doc__)
    out = Path(sys.argv[2])
    if sys.argv[1] == "models":
        make_models(out)
    else:
        out.mkdir(parents=True, exist_ok=True)
        for name in ("llama2", "llama3", "qwen3"):
            make_vocab(name, out)


if __name__ == "__main__":
    main()
