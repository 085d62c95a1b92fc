"""`sable bench grammar` on the JSONSchemaBench slice in tests/golden/grammar (llama3 tokenizer):
every case compiles or is refused by name, no instance is wrongly accepted or rejected, the
summary and the --json file carry every measure; a tarball reads like the folder; bad input is a
clear error. The full set's numbers, beside llguidance and xgrammar, are in bench/NOTES.md."""
import glob
import json
import os
import re
import subprocess
import tarfile

from conftest import SOURCE_DIR, sable_binary

SLICE = os.path.join(SOURCE_DIR, "tests", "golden", "grammar")
TOKENIZER = os.path.join(SOURCE_DIR, "tests", "golden", "tokenizers", "llama3")


def bench(*args):
    return subprocess.run([sable_binary(), "bench", "grammar", "--tokenizer-path", TOKENIZER, *args],
                          capture_output=True, text=True, timeout=600)


def summary_value(out, label):
    m = re.search(r"^" + re.escape(label) + r"\s+(\S+)", out, re.M)
    assert m, f"no '{label}' line in:\n{out}"
    return m.group(1)


def test_slice_is_measured_and_correct(tmp_path):
    out_json = tmp_path / "grammar.json"
    p = bench("--schemas", SLICE, "--json", str(out_json))
    assert p.returncode == 0, p.stderr
    files = sorted(glob.glob(os.path.join(SLICE, "*.json")))
    r = json.loads(out_json.read_text())
    assert r["schemas"] == len(files) == int(summary_value(p.stdout, "Schemas:"))
    assert r["wrong_accepts"] == 0 and r["wrong_rejects"] == 0, [
        c for c in r["cases"] if c.get("failures")]
    assert 0 < r["compiled"] < r["schemas"]  # the slice holds refused cases too
    assert r["valid_instances"] > 0 and r["invalid_instances"] > 0
    assert r["mask_us"]["count"] > 100 and 0 < r["mask_us"]["p50"] <= r["mask_us"]["p99"]
    cpu = r["mask_thread_cpu_us"]  # the thread's CPU time: never above the wall time in total
    assert 0 < cpu["p50"] <= cpu["p99"] <= cpu["max"]
    assert cpu["avg"] <= r["mask_us"]["avg"] * 1.05 + 1
    assert 0 < r["compile_ms"]["p50"] <= r["compile_ms"]["max"]
    compile_cpu = r["compile_thread_cpu_ms"]  # likewise for the compiling thread
    assert 0 < compile_cpu["p50"] <= compile_cpu["p99"] <= compile_cpu["max"]
    assert all(c["compile_cpu_ms"] <= c["compile_ms"] * 1.05 + 0.1 for c in r["cases"] if c["compiled"])
    assert r["peak_memory_mib"] > 0
    for c in r["cases"]:  # a refusal names the schema keyword or limit and where it is
        if not c["compiled"]:
            assert c["error"].startswith("json_schema: ") and "(at /" in c["error"], c
    # The case whose valid instances list properties out of declared order compiles, and its
    # out-of-order instances pass (any property order).
    by_name = {c["name"]: c for c in r["cases"]}
    assert by_name["Glaiveai2K---calculate_area_d26e2d5f"]["compiled"]
    assert float(summary_value(p.stdout, "Coverage (%):")) == round(100 * r["compiled"] / r["schemas"], 2)


def test_tarball_and_declared_order(tmp_path):
    tarball = tmp_path / "slice.tar.xz"
    with tarfile.open(tarball, "w:xz") as t:
        for f in sorted(glob.glob(os.path.join(SLICE, "*.json")))[:4]:
            t.add(f, arcname=os.path.join("cases", os.path.basename(f)))
    p = bench("--schemas", str(tarball), "--json", str(tmp_path / "r.json"))
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "r.json").read_text())["schemas"] == 4
    # --property-order declared: the out-of-order valid instances are now wrongly rejected.
    p = bench("--schemas", SLICE, "--property-order", "declared", "--json", str(tmp_path / "d.json"))
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "d.json").read_text())["wrong_rejects"] > 0


def test_bad_input_is_a_clear_error(tmp_path):
    p = bench("--schemas", str(tmp_path / "missing"))
    assert p.returncode != 0 and "neither a folder nor a tarball" in p.stderr
    (tmp_path / "bad.json").write_text('{"no_schema": 1}')
    p = bench("--schemas", str(tmp_path))
    assert p.returncode != 0 and "bad.json" in p.stderr and "no \"schema\"" in p.stderr
