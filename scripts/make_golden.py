#!/usr/bin/env python3
"""Generate tiny reference checkpoints (tests/golden/models/<name>/) with Hugging Face transformers.

Why: the engine proves it computes the same function as transformers by matching logits and greedy
tokens on small random-weight models. This script makes the ones the original golden set lacks, in
exactly the format tests/golden/README.md describes:

  config.json, generation_config.json, model.safetensors (bf16)  -- as save_pretrained writes them,
      with the classic top-level rope keys (rope_theta, rope_scaling, partial_rotary_factor) added
      beside rope_parameters;
  golden.json        {arch, kind, prompts (lengths 1, 7, 33, 96), greedy (24 ids, EOS ignored), ...}
  golden.safetensors logits_i [len, vocab] f32 and last_hidden_i [hidden] f32.

The reference is the bf16-saved checkpoint loaded back and upcast to float32, eager attention,
on the CPU. Greedy continuations are recomputed from scratch each step (no KV cache). A seed is
kept only when every greedy step's top-1/top-2 logit gap is comfortable, so an fp32 engine that
matches logits to ~1e-4 also reproduces every greedy token.

Needs only PyPI packages:  python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch transformers safetensors
Usage:  /tmp/venv/bin/python scripts/make_golden.py [--out tests/golden/models] [name ...]
"""
import argparse
import json
import os
import shutil
import sys

import torch
import transformers
from safetensors.torch import save_file

PROMPT_LENGTHS = (1, 7, 33, 96)
GREEDY_STEPS = 24
MIN_GREEDY_GAP = 2e-3  # smallest accepted top-1 minus top-2 logit during greedy decoding
COMMON = dict(vocab_size=1000, hidden_size=64, intermediate_size=128, num_attention_heads=4,
              max_position_embeddings=512)

# name -> (config class, kwargs). Tiny shapes; each exercises what the table in README.md says.
MODELS = {
    # per-head q/k norm, head_dim 32 != 64/4, renormalised top-2 of 8, a dense layer (mlp_only_layers)
    "qwen3_moe": ("Qwen3MoeConfig", dict(num_hidden_layers=3, num_key_value_heads=2, head_dim=32,
                                         moe_intermediate_size=32, num_experts=8,
                                         num_experts_per_tok=2, norm_topk_prob=True,
                                         decoder_sparse_step=1, mlp_only_layers=[1],
                                         rope_theta=1000000.0, tie_word_embeddings=False)),
    # (1+w) RMSNorm, GeGLU (tanh GELU), sqrt(hidden) embedding scale, MQA, head_dim 32, tied
    "gemma": ("GemmaConfig", dict(num_hidden_layers=2, num_key_value_heads=1, head_dim=32,
                                  hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh",
                                  pad_token_id=0, bos_token_id=2, eos_token_id=1)),
    # post-sublayer norms, q/k RMSNorm over the whole projection
    "olmo2": ("Olmo2Config", dict(num_hidden_layers=2, num_key_value_heads=4, pad_token_id=1,
                                  bos_token_id=None, eos_token_id=2, rms_norm_eps=1e-6)),
    # embedding/residual/attention multipliers, logits_scaling, tied
    "granite": ("GraniteConfig", dict(num_hidden_layers=2, num_key_value_heads=2,
                                      embedding_multiplier=12.0, residual_multiplier=0.22,
                                      attention_multiplier=0.2, logits_scaling=4.0,
                                      tie_word_embeddings=True)),
    # fused qkv_proj and gate_up_proj, partial rotary 0.75
    "phi3": ("Phi3Config", dict(num_hidden_layers=2, num_key_value_heads=2, partial_rotary_factor=0.75,
                                pad_token_id=None, bos_token_id=1, eos_token_id=2,
                                original_max_position_embeddings=512, sliding_window=None)),
    # LayerNorm with bias, partial rotary 0.25, q/k/v bias
    "stablelm": ("StableLmConfig", dict(num_hidden_layers=2, num_key_value_heads=2,
                                        partial_rotary_factor=0.25, use_qkv_bias=True,
                                        qk_layernorm=False, use_parallel_residual=False,
                                        bos_token_id=0, eos_token_id=0)),
}


def randomize(model, seed):
    """Weights ~ N(0, 0.08); norm weights ~ 1 + N(0, 0.2) (Gemma stores w of (1 + w): N(0, 0.2))."""
    gen = torch.Generator().manual_seed(seed)
    offset_norm = model.config.model_type in ("gemma",)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if "norm" in name and name.endswith("weight"):
                p.copy_((0.0 if offset_norm else 1.0) + 0.2 * noise)
            else:
                p.copy_(0.08 * noise)


def classic_rope_keys(cfg):
    """Add the top-level rope keys Hub checkpoints carry beside transformers 5's rope_parameters."""
    rp = cfg.get("rope_parameters")
    if not isinstance(rp, dict):
        return cfg
    cfg["rope_theta"] = rp.get("rope_theta", 10000.0)
    if rp.get("rope_type", "default") != "default":
        cfg["rope_scaling"] = dict(rp)
    if "partial_rotary_factor" in rp:
        cfg["partial_rotary_factor"] = rp["partial_rotary_factor"]
    return cfg


@torch.no_grad()
def reference(model, prompts):
    """Logits at every position, final-norm output at the last one, and greedy continuations."""
    out, greedy, min_gap = {}, [], float("inf")
    for i, prompt in enumerate(prompts):
        ids = torch.tensor([prompt])
        base = model.model(input_ids=ids).last_hidden_state
        out[f"logits_{i}"] = model(input_ids=ids).logits[0].float().contiguous()
        out[f"last_hidden_{i}"] = base[0, -1].float().contiguous()
        seq = list(prompt)
        for _ in range(GREEDY_STEPS):
            logits = model(input_ids=torch.tensor([seq])).logits[0, -1]
            top = torch.topk(logits, 2).values
            min_gap = min(min_gap, float(top[0] - top[1]))
            seq.append(int(torch.argmax(logits)))
        greedy.append(seq[len(prompt):])
    return out, greedy, min_gap


def make(name, out_root, tries=20):
    cls_name, kwargs = MODELS[name]
    config_cls = getattr(transformers, cls_name)
    for attempt in range(tries):
        seed = 1234 + 101 * attempt
        cfg = config_cls(**{**COMMON, **kwargs})
        torch.manual_seed(seed)
        model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
        randomize(model, seed)
        folder = os.path.join(out_root, name)
        shutil.rmtree(folder, ignore_errors=True)
        model.to(torch.bfloat16).save_pretrained(folder)
        ref = transformers.AutoModelForCausalLM.from_pretrained(
            folder, dtype=torch.float32, attn_implementation="eager").eval()
        gen = torch.Generator().manual_seed(seed + 7)
        prompts = [torch.randint(0, cfg.vocab_size, (n,), generator=gen).tolist()
                   for n in PROMPT_LENGTHS]
        tensors, greedy, gap = reference(ref, prompts)
        if gap < MIN_GREEDY_GAP:
            print(f"{name}: seed {seed} greedy gap {gap:.2e} too small, retrying")
            continue
        with open(os.path.join(folder, "config.json")) as f:
            config = json.load(f)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(classic_rope_keys(config), f, indent=2)
        save_file(tensors, os.path.join(folder, "golden.safetensors"))
        golden = {"arch": config["architectures"][0], "kind": "causal", "prompts": prompts,
                  "greedy": greedy, "dtype_of_weights": "bfloat16",
                  "reference": f"transformers {transformers.__version__} fp32 eager",
                  "seed": seed}
        with open(os.path.join(folder, "golden.json"), "w") as f:
            json.dump(golden, f)
        print(f"{name}: {golden['arch']} seed {seed}, min greedy gap {gap:.2e} -> {folder}")
        return
    sys.exit(f"{name}: no seed gave a greedy gap >= {MIN_GREEDY_GAP}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                      "golden", "models"))
    parser.add_argument("names", nargs="*", help=f"models to make (default all: {', '.join(MODELS)})")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.names or MODELS:
        if name not in MODELS:
            sys.exit(f"unknown model '{name}'; known: {', '.join(MODELS)}")
        make(name, os.path.abspath(args.out))


if __name__ == "__main__":
    main()
