#!/usr/bin/env python3
"""Issue 14's MoE bar, transformers' side: free-running greedy decoding of the MoE golden
checkpoints in bf16 on the GPU, counted token by token against the fp32 reference continuations
(tests/golden/models/<name>/golden.json). Writes {"<name>": {"agree": N, "total": M}} for
model_golden_gpu_test's MoeBf16 case (SABLE_HF_BF16_AGREEMENT=<file>), which must do at least as
well. Also the teacher-forced count (each position predicted from the reference prefix: one
divergence does not decide the rest, so it is far less noisy than the free-running one) as
"tf_agree". usage: moe_bf16_agreement.py OUT.json [golden models dir]"""
import json
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

out = Path(sys.argv[1])
root = Path(sys.argv[2] if len(sys.argv) > 2 else "tests/golden/models")
device = "cuda" if torch.cuda.is_available() else "cpu"
result = {}
for name in ("qwen2_moe", "mixtral", "qwen3_moe"):
    g = json.loads((root / name / "golden.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(root / name, dtype=torch.bfloat16).to(device).eval()
    agree = total = tf_agree = 0
    for prompt, ref in zip(g["prompts"], g["greedy"]):
        ids = torch.tensor([prompt], device=device)
        with torch.no_grad():
            gen = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=len(ref),
                                 min_new_tokens=len(ref), do_sample=False, pad_token_id=0)
        picks = gen[0, len(prompt):].tolist()
        agree += sum(int(a == b) for a, b in zip(picks, ref))
        total += len(ref)
        full = torch.tensor([prompt + ref[:-1]], device=device)
        with torch.no_grad():
            logits = model(full, attention_mask=torch.ones_like(full)).logits[0]
        tf = logits[len(prompt) - 1:].argmax(-1).tolist()
        tf_agree += sum(int(a == b) for a, b in zip(tf, ref))
    result[name] = {"agree": agree, "total": total, "tf_agree": tf_agree}
    print(f"moe_bf16 {name}: transformers bf16 {agree} of {total}, teacher-forced {tf_agree} "
          f"({device})", flush=True)
out.write_text(json.dumps(result))
