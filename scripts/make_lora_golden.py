#!/usr/bin/env python3
"""Generate the LoRA reference data (tests/golden/lora/<model>/) with PEFT and transformers.

Why: multi-LoRA serving must compute what PEFT computes. For each base checkpoint of
tests/golden/models (llama, qwen2, phi3) this makes two random PEFT adapters that differ in every knob
the loader reads, and records what the PEFT model produces with each of them (phi3, whose
checkpoint stores q|k|v and gate|up fused, gets adapters on qkv_proj / gate_up_proj):

  <model>/<adapter>/adapter_config.json, adapter_model.safetensors   -- as PEFT's save_pretrained
      writes them (key names base_model.model.<module>.lora_A/B.weight);
  <model>/golden.json         {base, prompts (the base golden's first three: lengths 1, 7, 33),
                               adapters: {name: {greedy: 24 ids per prompt, EOS ignored}}}
  <model>/golden.safetensors  logits_<adapter>_<i> [len(prompt i), vocab] f32.

`--bf16-error` adds to an existing golden.json what PEFT itself gets wrong in bf16: "bf16_rel_l2"
{adapter: worst relative L2 error of the logits per prompt} of the same PeftModel run in bfloat16
(CPU) against the fp32 reference. Adapter b's deltas are as large as the base weights and scaled
by 4, so PEFT's own bf16 error reaches 3e-2; the GPU test bounds ours by it (not by the base
models' 2e-2).

The base model's own reference stays in tests/golden/models/<model> (this script checks that the
PEFT model with its adapter disabled still reproduces it, so both files describe the same weights).

Adapters (random A and B; PEFT itself would start B at zero):
  a: rank 8, lora_alpha 16 (scaling alpha/r = 2), q/k/v/o_proj, fp32 weights
  b: rank 4, lora_alpha 8 with use_rslora (scaling alpha/sqrt(r) = 4), q/gate/up/down_proj, stored
     in bf16 (the loader converts)

The reference is the saved adapter loaded back with PeftModel.from_pretrained over the bf16 base
upcast to float32, eager attention, CPU. A seed is kept only when every greedy step's top-1/top-2
logit gap is at least 2e-3, so an fp32 engine that matches logits to ~1e-4 reproduces every token.

Run by hand (like scripts/make_golden.py; the data is committed):
  python3 -m venv /work/venv-ref && /work/venv-ref/bin/pip install torch transformers peft safetensors
  /work/venv-ref/bin/python scripts/make_lora_golden.py [--out tests/golden/lora] [model ...]
"""
import argparse
import json
import os
import shutil
import sys

import peft
import torch
import transformers
from safetensors.torch import load_file, save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODELS_DIR = os.path.join(ROOT, "tests", "golden", "models")
NUM_PROMPTS = 3  # the base golden's prompts of lengths 1, 7 and 33 keep the data small
GREEDY_STEPS = 24
MIN_GREEDY_GAP = 2e-3
LORA_STD = 0.1  # A and B entries ~ N(0, 0.1): deltas of the size of the base weights

ADAPTERS = {
    "a": dict(r=8, lora_alpha=16, use_rslora=False,
              target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], dtype=torch.float32),
    "b": dict(r=4, lora_alpha=8, use_rslora=True,
              target_modules=["q_proj", "gate_proj", "up_proj", "down_proj"], dtype=torch.bfloat16),
}
BASES = ("llama", "qwen2", "phi3")
# Phi-3 stores q|k|v and gate|up fused (qkv_proj, gate_up_proj): its adapters target those.
FUSED_TARGETS = {"a": ["qkv_proj", "o_proj"], "b": ["qkv_proj", "gate_up_proj", "down_proj"]}


def load_base(name):
    return transformers.AutoModelForCausalLM.from_pretrained(
        os.path.join(MODELS_DIR, name), dtype=torch.float32, attn_implementation="eager").eval()


def adapter_spec(base_name, name):
    spec = dict(ADAPTERS[name])
    if base_name == "phi3":
        spec["target_modules"] = FUSED_TARGETS[name]
    return spec


def save_adapter(base_name, spec, seed, folder):
    """Random adapter on a fresh base, saved as PEFT writes it (weights cast to spec's dtype)."""
    cfg = peft.LoraConfig(r=spec["r"], lora_alpha=spec["lora_alpha"], use_rslora=spec["use_rslora"],
                          target_modules=spec["target_modules"], lora_dropout=0.0, bias="none",
                          task_type="CAUSAL_LM")
    model = peft.get_peft_model(load_base(base_name), cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(LORA_STD * torch.randn(p.shape, generator=gen))
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder)
    path = os.path.join(folder, "adapter_model.safetensors")
    tensors = {k: v.to(spec["dtype"]).contiguous() for k, v in load_file(path).items()}
    save_file(tensors, path, metadata={"format": "pt"})
    os.chmod(path, 0o644)
    os.remove(os.path.join(folder, "README.md"))  # PEFT's model-card template, not data
    config_path = os.path.join(folder, "adapter_config.json")
    with open(config_path) as f:
        config = json.load(f)
    config["base_model_name_or_path"] = f"tests/golden/models/{base_name}"  # not this machine's path
    with open(config_path, "w") as f:
        json.dump(config, f, indent=2)


@torch.no_grad()
def greedy_and_logits(model, prompts):
    logits, greedy, min_gap = [], [], float("inf")
    for prompt in prompts:
        logits.append(model(input_ids=torch.tensor([prompt])).logits[0].float().contiguous())
        seq = list(prompt)
        for _ in range(GREEDY_STEPS):
            last = model(input_ids=torch.tensor([seq])).logits[0, -1]
            top = torch.topk(last, 2).values
            min_gap = min(min_gap, float(top[0] - top[1]))
            seq.append(int(torch.argmax(last)))
        greedy.append(seq[len(prompt):])
    return logits, greedy, min_gap


def make(base_name, out_root, tries=20):
    with open(os.path.join(MODELS_DIR, base_name, "golden.json")) as f:
        base_golden = json.load(f)
    prompts = base_golden["prompts"][:NUM_PROMPTS]
    base_ref = load_file(os.path.join(MODELS_DIR, base_name, "golden.safetensors"))
    folder = os.path.join(out_root, base_name)
    for attempt in range(tries):
        seed = 4321 + 97 * attempt
        shutil.rmtree(folder, ignore_errors=True)
        tensors, adapters, gaps = {}, {}, []
        for i, name in enumerate(ADAPTERS):
            save_adapter(base_name, adapter_spec(base_name, name), seed + i,
                         os.path.join(folder, name))
        # One PeftModel holding both adapters, as loaded from disk; switching selects one.
        model = peft.PeftModel.from_pretrained(load_base(base_name), os.path.join(folder, "a"),
                                               adapter_name="a").eval()
        model.load_adapter(os.path.join(folder, "b"), adapter_name="b")
        for name in ADAPTERS:
            model.set_adapter(name)
            logits, greedy, gap = greedy_and_logits(model, prompts)
            gaps.append(gap)
            spec = adapter_spec(base_name, name)
            adapters[name] = {"greedy": greedy, **{k: v for k, v in spec.items() if k != "dtype"},
                              "dtype": str(spec["dtype"]).replace("torch.", "")}
            for j, row in enumerate(logits):
                tensors[f"logits_{name}_{j}"] = row
        with model.disable_adapter():
            base_logits, base_greedy, _ = greedy_and_logits(model, prompts)
        for j, row in enumerate(base_logits):
            ref = base_ref[f"logits_{j}"]
            err = float((row - ref).abs().max() / ref.abs().max())
            assert err < 1e-4, f"{base_name}: base logits_{j} differ from the golden ({err:.2e})"
        assert base_greedy == base_golden["greedy"][:NUM_PROMPTS], "base greedy differs"
        if min(gaps) < MIN_GREEDY_GAP:
            print(f"{base_name}: seed {seed} greedy gap {min(gaps):.2e} too small, retrying")
            continue
        for name in ADAPTERS:
            assert adapters[name]["greedy"] != base_golden["greedy"][:NUM_PROMPTS], \
                f"{base_name}: adapter {name} does not change the greedy tokens"
        save_file(tensors, os.path.join(folder, "golden.safetensors"))
        os.chmod(os.path.join(folder, "golden.safetensors"), 0o644)
        golden = {"base": base_name, "prompts": prompts, "adapters": adapters, "seed": seed,
                  "reference": f"peft {peft.__version__}, transformers {transformers.__version__},"
                               " fp32 eager"}
        with open(os.path.join(folder, "golden.json"), "w") as f:
            json.dump(golden, f)
        print(f"{base_name}: seed {seed}, min greedy gap {min(gaps):.2e} -> {folder}")
        return
    sys.exit(f"{base_name}: no seed gave a greedy gap >= {MIN_GREEDY_GAP}")


@torch.no_grad()
def annotate_bf16_error(base_name, out_root):
    """golden.json += bf16_rel_l2: PEFT's own bf16 error against the fp32 reference, per prompt."""
    folder = os.path.join(out_root, base_name)
    with open(os.path.join(folder, "golden.json")) as f:
        golden = json.load(f)
    ref = load_file(os.path.join(folder, "golden.safetensors"))
    errors = {}
    for name in ADAPTERS:
        base = transformers.AutoModelForCausalLM.from_pretrained(
            os.path.join(MODELS_DIR, base_name), dtype=torch.bfloat16, attn_implementation="eager")
        model = peft.PeftModel.from_pretrained(base, os.path.join(folder, name)).eval()
        errors[name] = []
        for i, prompt in enumerate(golden["prompts"]):
            got = model(input_ids=torch.tensor([prompt])).logits[0].float()
            want = ref[f"logits_{name}_{i}"]
            errors[name].append(round(float(((got - want).norm(dim=-1) / want.norm(dim=-1)).max()), 5))
    golden["bf16_rel_l2"] = errors
    with open(os.path.join(folder, "golden.json"), "w") as f:
        json.dump(golden, f)
    print(f"{base_name}: PEFT bf16 worst relative L2 per prompt {errors}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "golden", "lora"))
    parser.add_argument("--bf16-error", action="store_true",
                        help="only add PEFT's own bf16 error to the existing golden.json")
    parser.add_argument("names", nargs="*", help=f"base models (default: {', '.join(BASES)})")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.names or BASES:
        if name not in BASES:
            sys.exit(f"unknown base '{name}'; known: {', '.join(BASES)}")
        if args.bf16_error:
            annotate_bf16_error(name, os.path.abspath(args.out))
        else:
            make(name, os.path.abspath(args.out))


if __name__ == "__main__":
    main()
