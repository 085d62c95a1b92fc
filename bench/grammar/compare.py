#!/usr/bin/env python3
"""JSONSchemaBench (MaskBench) through llguidance, xgrammar and `sable bench grammar`, side by side.

Not part of the serving path: a measurement script for bench/NOTES.md (issue 20). Every engine sees
the same cases, tokenizer (tokenizer.json of --tokenizer-path, HF `tokenizers`) and machine, and
the same measures as `sable bench grammar`: for each schema compile it (timed; an error counts
against coverage), then force each instance's compact JSON text token by token: every token must be
in the mask (each mask fill timed), a valid instance must end where EOS is allowed, an invalid one
must be stopped at some token. Each engine runs in its own process, single-threaded, so that its
peak memory is its own. Python adds about a microsecond to each of the Python engines' mask times.
Compile and mask times are also taken as the calling thread's CPU time (time.thread_time; with one
thread every engine computes on it), which a shared machine's load inflates far less than wall time.

  pip install --break-system-packages llguidance xgrammar tokenizers transformers
  (xgrammar imports torch at start: PyPI's CUDA torch, several GB; there is no lighter route)
  python3 bench/grammar/compare.py --schemas ../shared/golden/grammar/jsonschemabench_public.tar.xz \
      --tokenizer-path ../shared/golden/tokenizers/llama3 --sable build/bin/sable --every 5
"""
import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time

ENGINES = ("sable", "llguidance", "xgrammar")


def load_cases(path, every):
    """(name, file path) of the cases, sorted by name, every `every`-th one."""
    if os.path.isdir(path):
        root = path
    else:
        root = tempfile.mkdtemp(prefix="grammar-cases-")
        with tarfile.open(path) as t:
            t.extractall(root, filter="data")
    files = sorted(glob.glob(os.path.join(root, "**", "*.json"), recursive=True),
                   key=lambda f: os.path.basename(f))
    return files[::every]


def quantile(sorted_values, q):
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * (len(sorted_values) - 1) + 0.5))]


def eos_ids(tokenizer_dir, hf):
    cfg = json.load(open(os.path.join(tokenizer_dir, "tokenizer_config.json")))
    eos = cfg.get("eos_token")
    if isinstance(eos, dict):
        eos = eos.get("content")
    return [hf.token_to_id(eos)]


class Llguidance:
    def __init__(self, tokenizer_dir, hf, eos):
        import llguidance
        import llguidance.numpy
        self.ll, self.np = llguidance, llguidance.numpy
        self.tok = llguidance.LLTokenizer(os.path.join(tokenizer_dir, "tokenizer.json"), eos_token=eos)
        self.mask = llguidance.numpy.allocate_token_bitmask(1, self.tok.vocab_size)

    def compile(self, schema):
        grammar = self.ll.LLMatcher.grammar_from_json_schema(schema)
        m = self.ll.LLMatcher(self.tok, grammar, log_level=0)
        if m.is_error():
            raise ValueError(m.get_error())
        return m

    def start(self, compiled):
        compiled.reset()
        return compiled

    def fill(self, m):
        self.np.fill_next_token_bitmask(m, self.mask, 0)
        return self.mask[0]

    def accept(self, m, token):
        return m.consume_token(token)


class Xgrammar:
    def __init__(self, tokenizer_dir, hf, eos):
        import transformers
        import xgrammar
        self.xgr = xgrammar
        tokenizer = transformers.PreTrainedTokenizerFast(
            tokenizer_file=os.path.join(tokenizer_dir, "tokenizer.json"))
        self.info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, stop_token_ids=eos)
        self.compiler = xgrammar.GrammarCompiler(self.info, max_threads=1, cache_enabled=False)
        self.mask_t = xgrammar.allocate_token_bitmask(1, self.info.vocab_size)
        self.mask = self.mask_t.numpy()

    def compile(self, schema):
        return self.compiler.compile_json_schema(schema)

    def start(self, compiled):
        return self.xgr.GrammarMatcher(compiled)

    def fill(self, m):
        m.fill_next_token_bitmask(self.mask_t)
        return self.mask[0]

    def accept(self, m, token):
        return m.accept_token(token)


def run_python_engine(name, files, tokenizer_dir):
    from tokenizers import Tokenizer
    hf = Tokenizer.from_file(os.path.join(tokenizer_dir, "tokenizer.json"))
    eos = eos_ids(tokenizer_dir, hf)
    engine = {"llguidance": Llguidance, "xgrammar": Xgrammar}[name](tokenizer_dir, hf, eos)
    compile_ms, compile_cpu_ms, mask_us, mask_cpu_us, reasons = [], [], [], [], {}
    compiled_n = valid = invalid = wrong_accepts = wrong_rejects = 0
    for f in files:
        case = json.load(open(f))
        schema = json.dumps(case["schema"], ensure_ascii=False)
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            compiled = engine.compile(schema)
        except Exception as e:  # a refusal: counted against coverage
            reason = str(e).splitlines()[0][:100] if str(e) else type(e).__name__
            reasons[reason] = reasons.get(reason, 0) + 1
            continue
        compile_ms.append((time.perf_counter() - t0) * 1e3)
        compile_cpu_ms.append((time.thread_time() - c0) * 1e3)
        compiled_n += 1
        for test in case.get("tests", []):
            text = json.dumps(test["data"], separators=(",", ":"), ensure_ascii=False)
            m = engine.start(compiled)
            rejected = False
            for token in hf.encode(text, add_special_tokens=False).ids:
                t0, c0 = time.perf_counter(), time.thread_time()
                mask = engine.fill(m)
                mask_us.append((time.perf_counter() - t0) * 1e6)
                mask_cpu_us.append((time.thread_time() - c0) * 1e6)
                if not (int(mask[token // 32]) >> (token % 32)) & 1 or not engine.accept(m, token):
                    rejected = True
                    break
            if not rejected:
                t0, c0 = time.perf_counter(), time.thread_time()
                mask = engine.fill(m)
                mask_us.append((time.perf_counter() - t0) * 1e6)
                mask_cpu_us.append((time.thread_time() - c0) * 1e6)
                rejected = not any((int(mask[e // 32]) >> (e % 32)) & 1 for e in eos)
            if test["valid"]:
                valid += 1
                wrong_rejects += rejected
            else:
                invalid += 1
                wrong_accepts += not rejected
    compile_ms.sort()
    compile_cpu_ms.sort()
    mask_us.sort()
    mask_cpu_us.sort()
    return {
        "backend": name, "schemas": len(files), "compiled": compiled_n,
        "coverage_pct": 100.0 * compiled_n / max(1, len(files)), "valid_instances": valid,
        "invalid_instances": invalid, "wrong_accepts": wrong_accepts, "wrong_rejects": wrong_rejects,
        "compile_ms": {"p50": quantile(compile_ms, 0.5), "p99": quantile(compile_ms, 0.99),
                       "max": compile_ms[-1] if compile_ms else 0.0},
        "compile_thread_cpu_ms": {"p50": quantile(compile_cpu_ms, 0.5),
                                  "p99": quantile(compile_cpu_ms, 0.99),
                                  "max": compile_cpu_ms[-1] if compile_cpu_ms else 0.0},
        "mask_us": {"count": len(mask_us), "avg": sum(mask_us) / max(1, len(mask_us)),
                    "p50": quantile(mask_us, 0.5), "p99": quantile(mask_us, 0.99),
                    "max": mask_us[-1] if mask_us else 0.0},
        "mask_thread_cpu_us": {"avg": sum(mask_cpu_us) / max(1, len(mask_cpu_us)),
                               "p50": quantile(mask_cpu_us, 0.5), "p99": quantile(mask_cpu_us, 0.99),
                               "max": mask_cpu_us[-1] if mask_cpu_us else 0.0},
        "peak_memory_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "refusals": dict(sorted(reasons.items(), key=lambda kv: -kv[1])[:10]),
    }


def run_sable(sable, files, tokenizer_dir, extra):
    with tempfile.TemporaryDirectory(prefix="grammar-subset-") as d:
        for f in files:
            os.symlink(os.path.abspath(f), os.path.join(d, os.path.basename(f)))
        out = os.path.join(d, "result.out")
        subprocess.run([sable, "bench", "grammar", "--schemas", d, "--tokenizer-path", tokenizer_dir,
                        "--threads", "1", "--json", out, *extra], check=True, stdout=subprocess.DEVNULL)
        result = json.load(open(out))
    result.pop("cases", None)
    return result


ROWS = [("Compiled schemas", lambda r: f"{r['compiled']}/{r['schemas']}"),
        ("Coverage (%)", lambda r: f"{r['coverage_pct']:.1f}"),
        ("Instances valid / invalid", lambda r: f"{r['valid_instances']}/{r['invalid_instances']}"),
        ("Wrong accepts", lambda r: str(r["wrong_accepts"])),
        ("Wrong rejects", lambda r: str(r["wrong_rejects"])),
        ("Compile p50 (ms)", lambda r: f"{r['compile_ms']['p50']:.2f}"),
        ("Compile p99 (ms)", lambda r: f"{r['compile_ms']['p99']:.1f}"),
        ("Compile max (ms)", lambda r: f"{r['compile_ms']['max']:.0f}"),
        ("Compile CPU p50 (ms)", lambda r: f"{r['compile_thread_cpu_ms']['p50']:.2f}"),
        ("Compile CPU p99 (ms)", lambda r: f"{r['compile_thread_cpu_ms']['p99']:.1f}"),
        ("Masks computed", lambda r: str(r["mask_us"]["count"])),
        ("Mask avg (us)", lambda r: f"{r['mask_us']['avg']:.1f}"),
        ("Mask p50 (us)", lambda r: f"{r['mask_us']['p50']:.1f}"),
        ("Mask p99 (us)", lambda r: f"{r['mask_us']['p99']:.0f}"),
        ("Mask max (us)", lambda r: f"{r['mask_us']['max']:.0f}"),
        ("Mask CPU avg (us)", lambda r: f"{r['mask_thread_cpu_us']['avg']:.1f}"),
        ("Mask CPU p99 (us)", lambda r: f"{r['mask_thread_cpu_us']['p99']:.0f}"),
        ("Peak memory (MiB)", lambda r: f"{r['peak_memory_mib']:.0f}")]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--schemas", required=True)
    p.add_argument("--tokenizer-path", required=True)
    p.add_argument("--sable", default="build/bin/sable", help="the sable binary")
    p.add_argument("--sable-args", default="", help="extra `sable bench grammar` flags")
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--every", type=int, default=1, help="every N-th case (by name) only")
    p.add_argument("--json", help="write all results here")
    p.add_argument("--engine", help=argparse.SUPPRESS)  # child mode: one Python engine
    p.add_argument("--cases-file", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.engine:  # child: measure one engine, print its JSON
        files = json.load(open(args.cases_file))
        print(json.dumps(run_python_engine(args.engine, files, args.tokenizer_path)))
        return
    files = load_cases(args.schemas, args.every)
    results = []
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(files, f)
        cases_file = f.name
    for name in args.engines.split(","):
        t0 = time.time()
        if name == "sable":
            r = run_sable(args.sable, files, args.tokenizer_path, args.sable_args.split())
        else:
            out = subprocess.run([sys.executable, __file__, "--engine", name, "--cases-file", cases_file,
                                  "--schemas", args.schemas, "--tokenizer-path", args.tokenizer_path],
                                 check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
        r["wall_s"] = round(time.time() - t0, 1)
        results.append(r)
    names = [r["backend"] for r in results]
    print(f"{len(files)} cases, every {args.every}-th, tokenizer {args.tokenizer_path}, 1 thread")
    print(f"{'':<28}" + "".join(f"{n:>16}" for n in names))
    for label, fmt in ROWS + [("Wall time (s)", lambda r: str(r["wall_s"]))]:
        print(f"{label:<28}" + "".join(f"{fmt(r):>16}" for r in results))
    for r in results:
        if r.get("refusals"):
            print(f"\n{r['backend']} refusals (top):")
            for why, n in r["refusals"].items():
                print(f"  {n:>5}  {why}")
    if args.json:
        json.dump(results, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
