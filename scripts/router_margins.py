# Router top-k margins of an MoE golden checkpoint, from transformers in fp32: for each position the
# smallest gap, over layers, between the k-th and (k+1)-th routing probability. Used to check that
# the positions where the bf16 CUDA path leaves the fp32 reference are near-tied routing decisions
# (bench/NOTES.md, tests/gpu/model_golden_gpu_test.cpp). PyPI: torch, transformers.
#   usage: python scripts/router_margins.py qwen3_moe PROMPT_INDEX POS,POS,...
import json, torch, sys
from transformers import AutoModelForCausalLM
name = sys.argv[1]; prompt_i = int(sys.argv[2]); positions = [int(x) for x in sys.argv[3].split(',')]
d = f"/work/main/tests/golden/models/{name}"
m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
g = json.load(open(f"{d}/golden.json"))
ids = torch.tensor([g["prompts"][prompt_i]])
with torch.no_grad():
    out = m(ids, output_router_logits=True)
k = m.config.num_experts_per_tok
rl = out.router_logits  # tuple per layer [T, E]
T = ids.shape[1]
def margin(pos):
    best = 1e9
    for layer in rl:
        p = torch.softmax(layer[pos].float(), -1)
        s, _ = torch.sort(p, descending=True)
        best = min(best, (s[k-1] - s[k]).item())
    return best
allm = sorted(margin(i) for i in range(T))
print("median margin all positions %.4f" % allm[len(allm)//2])
print("failing:", ["%d:%.4f" % (p, margin(p)) for p in positions])
import statistics
fail = set(positions)
ok = [margin(i) for i in range(T) if i not in fail]
print("passing positions: min %.4f median %.4f" % (min(ok), statistics.median(ok)))
