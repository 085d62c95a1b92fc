#!/usr/bin/env python3
"""HF `tokenizers` side of the benchmark: same corpus, same measurement as tokenizer_bench.
Prints one line per mode: `hf <threads> <MB/s> <tokens/s> <tokens>`."""
import json, os, sys, time
from tokenizers import Tokenizer

tok = Tokenizer.from_file(os.path.join(sys.argv[1], "tokenizer.json"))
docs = json.load(open(sys.argv[2], encoding="utf-8"))
nbytes = sum(len(d.encode("utf-8")) for d in docs)
threads = os.cpu_count()

def best(fn, reps=3):
    t_best, n = 1e9, 0
    for _ in range(reps):
        t0 = time.perf_counter()
        n = fn()
        t_best = min(t_best, time.perf_counter() - t0)
    return t_best, n

t, n = best(lambda: sum(len(tok.encode(d, add_special_tokens=False).ids) for d in docs))
print(f"hf 1 {nbytes / t / 1e6:.2f} {n / t:.0f} {n}")
t, n = best(lambda: sum(len(e.ids) for e in tok.encode_batch(docs, add_special_tokens=False)))
print(f"hf {threads} {nbytes / t / 1e6:.2f} {n / t:.0f} {n}")
