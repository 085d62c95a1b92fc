#!/usr/bin/env python3
"""Random rank-R PEFT LoRA adapters for a checkpoint's shapes (the LoRA decode bench, issue 17).

Why: the bench needs 16 adapters at the 8B shape, and the device machine cannot download any. This
writes what PEFT's save_pretrained writes (adapter_config.json + adapter_model.safetensors, keys
base_model.model.<module>.lora_A/B.weight, bf16) for q/k/v/o/gate/up/down_proj of every layer,
with A, B ~ N(0, 0.02): the bench measures speed, not answers.

  python3 bench/lora/make_adapters.py MODEL_DIR OUT_DIR [--count 16] [--rank 16]
"""
import argparse
import json
import os

import torch
from safetensors.torch import save_file


def module_shapes(cfg):
    h = cfg["hidden_size"]
    d = cfg.get("head_dim") or h // cfg["num_attention_heads"]
    q, kv, inter = cfg["num_attention_heads"] * d, cfg["num_key_value_heads"] * d, cfg["intermediate_size"]
    return {"self_attn.q_proj": (h, q), "self_attn.k_proj": (h, kv), "self_attn.v_proj": (h, kv),
            "self_attn.o_proj": (q, h), "mlp.gate_proj": (h, inter), "mlp.up_proj": (h, inter),
            "mlp.down_proj": (inter, h)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("--count", type=int, default=16)
    p.add_argument("--rank", type=int, default=16)
    a = p.parse_args()
    with open(os.path.join(a.model, "config.json")) as f:
        cfg = json.load(f)
    shapes = module_shapes(cfg)
    for n in range(a.count):
        g = torch.Generator().manual_seed(1000 + n)
        tensors = {}
        for layer in range(cfg["num_hidden_layers"]):
            for mod, (fan_in, fan_out) in shapes.items():
                key = f"base_model.model.model.layers.{layer}.{mod}"
                tensors[f"{key}.lora_A.weight"] = (torch.randn(a.rank, fan_in, generator=g) * 0.02).bfloat16()
                tensors[f"{key}.lora_B.weight"] = (torch.randn(fan_out, a.rank, generator=g) * 0.02).bfloat16()
        folder = os.path.join(a.out, f"a{n}")
        os.makedirs(folder, exist_ok=True)
        save_file(tensors, os.path.join(folder, "adapter_model.safetensors"))
        config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": a.rank, "lora_alpha": 2 * a.rank,
                  "lora_dropout": 0.0, "use_rslora": False, "bias": "none", "fan_in_fan_out": False,
                  "target_modules": [m.split(".")[1] for m in shapes], "base_model_name_or_path": a.model}
        with open(os.path.join(folder, "adapter_config.json"), "w") as f:
            json.dump(config, f, indent=2)
    print(f"{a.count} rank-{a.rank} adapters in {a.out}")


if __name__ == "__main__":
    main()
