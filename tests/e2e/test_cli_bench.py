"""`sable bench offline` and `sable bench serving` with SGLang's dataset options on the tiny golden
model (CPU, a few prompts and tokens): each dataset runs, prints SGLang's summary lines and appends
a JSON line holding the dataset parameters; the old flags still work; bad options are clear errors."""
import json
import os
import re
import subprocess

import pytest

from conftest import MODEL_DIR, SOURCE_DIR, sable_binary

SHAREGPT = os.path.join(SOURCE_DIR, "tests", "golden", "bench", "sharegpt_fixture.json")

DATASETS = {
    "random-ids": ["--num-prompts", "3", "--random-input-len", "24", "--random-output-len", "4"],
    "random": ["--num-prompts", "3", "--random-input-len", "24", "--random-output-len", "4",
               "--random-range-ratio", "1", "--dataset-path", SHAREGPT],
    "sharegpt": ["--num-prompts", "3", "--sharegpt-output-len", "4", "--dataset-path", SHAREGPT],
    "generated-shared-prefix": ["--gsp-num-groups", "2", "--gsp-prompts-per-group", "2",
                                "--gsp-system-prompt-len", "32", "--gsp-question-len", "8",
                                "--gsp-output-len", "3"],
}


def offline(tmp_path, *args):
    result = tmp_path / "offline.jsonl"
    cmd = [sable_binary(), "bench", "offline", "--model-path", MODEL_DIR, "--device", "cpu",
           "--result-file", str(result), "--skip-warmup", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    lines = result.read_text().splitlines() if result.exists() else []
    return p, [json.loads(line) for line in lines]


def summary_value(out, label):
    m = re.search(r"^" + re.escape(label) + r"\s+(\S+)", out, re.M)
    assert m, f"no '{label}' line in:\n{out}"
    return float(m.group(1))


@pytest.mark.parametrize("name", list(DATASETS))
def test_offline_each_dataset(tmp_path, name):
    p, results = offline(tmp_path, "--dataset-name", name, *DATASETS[name])
    assert p.returncode == 0, p.stderr
    want = 4 if name == "generated-shared-prefix" else 3
    assert summary_value(p.stdout, "Successful requests:") == want
    for label in ("Benchmark duration (s):", "Total input tokens:", "Total generated tokens:",
                  "Request throughput (req/s):", "Input token throughput (tok/s):",
                  "Output token throughput (tok/s):"):
        assert summary_value(p.stdout, label) > 0, label
    assert len(results) == 1
    r = results[0]
    assert r["dataset"]["dataset_name"] == name and r["dataset"]["seed"] == 42
    assert r["successful_requests"] == want
    expected_out = {"random-ids": None, "random": 12, "sharegpt": 12, "generated-shared-prefix": 12}
    if expected_out[name] is not None:  # ignore_eos: exactly the sampled output lengths
        assert r["total_output_tokens"] == expected_out[name]
    if name == "generated-shared-prefix":
        assert r["dataset"]["gsp_num_groups"] == 2 and r["dataset"]["gsp_system_prompt_len"] == 32
    if name == "random":
        assert r["total_input_tokens"] == 72  # 3 x 24, Qwen adds no special tokens


def test_offline_old_flags_are_fixed_length_token_ids(tmp_path):
    p, results = offline(tmp_path, "--num-prompts", "4", "--input-len", "16", "--output-len", "3")
    assert p.returncode == 0, p.stderr
    assert "--dataset-name random-ids --random-input-len 16 --random-output-len 3 " \
           "--random-range-ratio 1" in p.stderr
    r = results[0]
    assert r["dataset"]["tokenize_prompt"] is True
    assert (r["total_input_tokens"], r["total_output_tokens"]) == (64, 12)
    p, results = offline(tmp_path, "--num-prompts", "4", "--input-len", "8", "--output-len", "2",
                         "--shared-prefix", "40")
    assert p.returncode == 0, p.stderr
    r = results[-1]
    assert r["dataset"]["dataset_name"] == "generated-shared-prefix"
    assert r["dataset"]["gsp_num_groups"] == 1 and r["dataset"]["gsp_prompts_per_group"] == 4
    assert r["total_input_tokens"] == 4 * 48
    assert r["cached_tokens"] >= 3 * 32  # the shared prefix is computed once (radix cache)


def test_offline_random_without_sharegpt_is_a_clear_error(tmp_path):
    p, results = offline(tmp_path, "--dataset-name", "random", "--num-prompts", "2")
    assert p.returncode != 0
    assert "--dataset-path" in p.stderr and "random-ids" in p.stderr
    assert results == []


def test_serving_with_a_dataset(server, tmp_path):
    out = tmp_path / "serving.jsonl"
    cmd = [sable_binary(), "bench", "serving", "--base-url", server.url, "--dataset-name",
           "generated-shared-prefix", "--gsp-num-groups", "2", "--gsp-prompts-per-group", "2",
           "--gsp-system-prompt-len", "24", "--gsp-question-len", "6", "--gsp-output-len", "3",
           "--request-rate", "50", "--output-file", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert summary_value(p.stdout, "Successful requests:") == 4
    for label in ("Median TTFT (ms):", "P99 TTFT (ms):", "Median ITL (ms):", "P99 ITL (ms):",
                  "Median E2E Latency (ms):", "P99 E2E Latency (ms):"):
        assert summary_value(p.stdout, label) > 0, label
    r = json.loads(out.read_text().splitlines()[-1])
    assert r["completed"] == 4 and r["total_output_tokens"] == 12
    assert r["dataset"]["dataset_name"] == "generated-shared-prefix"
    assert r["median_ttft_ms"] > 0 and r["p99_itl_ms"] >= r["median_itl_ms"]


def test_extra_request_body_as_sglang_merges_it(server, tmp_path):
    # offline: into every request's sampling parameters, after SGLang's defaults (its
    # max_new_tokens wins over the dataset's output length, as in SGLang's script).
    body = json.dumps({"temperature": 0.8, "top_p": 0.9, "top_k": 20, "max_new_tokens": 2})
    p, results = offline(tmp_path, "--dataset-name", "random-ids", *DATASETS["random-ids"],
                         "--extra-request-body", body)
    assert p.returncode == 0, p.stderr
    assert results[-1]["total_output_tokens"] == 3 * 2
    assert results[-1]["extra_request_body"] == json.loads(body)
    # A bad body is a clear error before the model loads: not an object, or a bad parameter.
    p, _ = offline(tmp_path, "--num-prompts", "2", "--extra-request-body", "[1]")
    assert p.returncode != 0 and "--extra-request-body must be a JSON object" in p.stderr
    p, _ = offline(tmp_path, "--num-prompts", "2", "--extra-request-body", '{"top_p": 5}')
    assert p.returncode != 0 and "top_p" in p.stderr

    # serving: into every request's payload (the sglang backend's sampling_params replaced).
    out = tmp_path / "serving.jsonl"
    extra = {"sampling_params": {"max_new_tokens": 3, "ignore_eos": True, "temperature": 0.7}}
    cmd = [sable_binary(), "bench", "serving", "--base-url", server.url, "--dataset-name",
           "random-ids", *DATASETS["random-ids"], "--request-rate", "50",
           "--extra-request-body", json.dumps(extra), "--output-file", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    r = json.loads(out.read_text().splitlines()[-1])
    assert r["completed"] == 3 and r["total_output_tokens"] == 9
    assert r["extra_request_body"] == extra
