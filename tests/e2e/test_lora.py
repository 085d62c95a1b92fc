"""LoRA adapters over HTTP on the golden llama model with the PEFT reference adapters of
tests/golden/lora/llama (a: rank 8 q/k/v/o; b: rank 4 rsLoRA q/gate/up/down).

Greedy output per adapter equals PEFT's reference tokens (native lora_path, a batch mixing both
adapters and the base, OpenAI model "BASE:NAME" and the adapter's own name); prefixes are never
shared across adapters; /v1/models lists the adapters; /load_lora_adapter and
/unload_lora_adapter work at run time; and every error names the adapter and the problem: an
unknown adapter, LoRA off, a target module the model lacks, shapes of another model, a rank above
--max-lora-rank at startup.
"""
import json
import os
import struct
import subprocess

import pytest
import requests

from conftest import SOURCE_DIR, Server, sable_binary

LLAMA_DIR = os.path.join(SOURCE_DIR, "tests", "golden", "models", "llama")
LORA_DIR = os.path.join(SOURCE_DIR, "tests", "golden", "lora")
TOKENIZER_DIR = os.path.join(SOURCE_DIR, "tests", "golden", "tokenizers", "qwen3")  # ids only
STEPS = 24


def adapter(model, name):
    return os.path.join(LORA_DIR, model, name)


@pytest.fixture(scope="module")
def lora_server():
    s = Server("--lora-paths", f"a={adapter('llama', 'a')}", f"b={adapter('llama', 'b')}",
               "--max-loras-per-batch", "2", "--tokenizer-path", TOKENIZER_DIR,
               "--skip-server-warmup", model_dir=LLAMA_DIR, model_name="llama")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def reference():
    with open(os.path.join(LORA_DIR, "llama", "golden.json")) as f:
        lora = json.load(f)
    with open(os.path.join(LLAMA_DIR, "golden.json")) as f:
        base = json.load(f)
    greedy = {name: a["greedy"] for name, a in lora["adapters"].items()}
    greedy[None] = base["greedy"]
    return lora["prompts"], greedy


def greedy_body(ids, lora_path=None):
    body = {"input_ids": ids,
            "sampling_params": {"temperature": 0, "max_new_tokens": STEPS, "ignore_eos": True}}
    if lora_path is not None:
        body["lora_path"] = lora_path
    return body


def generate(server, ids, lora_path=None):
    r = requests.post(server.url + "/generate", json=greedy_body(ids, lora_path))
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("name", ["a", "b", None])
def test_greedy_tokens_match_peft(lora_server, reference, name):
    prompts, greedy = reference
    for i, prompt in enumerate(prompts):
        assert generate(lora_server, prompt, name)["output_ids"] == greedy[name][i], (name, i)


def test_one_request_mixes_both_adapters_and_the_base(lora_server, reference):
    prompts, greedy = reference
    names = ["a", None, "b"]
    body = greedy_body([prompts[i] for i in range(3)], names)
    r = requests.post(lora_server.url + "/generate", json=body)
    assert r.status_code == 200, r.text
    for i, out in enumerate(r.json()):
        assert out["output_ids"] == greedy[names[i]][i], names[i]


def test_prefixes_are_not_shared_across_adapters(lora_server, reference):
    prompt = list(reversed(reference[0][2]))  # 33 tokens nobody has sent yet
    first = generate(lora_server, prompt, "a")["meta_info"]
    assert first["cached_tokens"] == 0
    other = generate(lora_server, prompt, "b")["meta_info"]
    assert other["cached_tokens"] == 0, "adapter b reused adapter a's KV"
    base = generate(lora_server, prompt)["meta_info"]
    assert base["cached_tokens"] == 0, "the base model reused an adapter's KV"
    again = generate(lora_server, prompt, "a")["meta_info"]
    assert again["cached_tokens"] > 0, "the same adapter should reuse its own prefix"


def test_openai_model_names_the_adapter(lora_server, reference):
    prompts, _ = reference
    native = generate(lora_server, prompts[1], "b")["text"]
    for model in ("llama:b", "b"):
        r = requests.post(lora_server.url + "/v1/completions", json={
            "model": model, "prompt": prompts[1], "max_tokens": STEPS, "temperature": 0,
            "ignore_eos": True})
        assert r.status_code == 200, r.text
        assert r.json()["model"] == model
        assert r.json()["choices"][0]["text"] == native, model
    r = requests.post(lora_server.url + "/v1/completions",
                      json={"model": "llama:zzz", "prompt": prompts[0], "max_tokens": 1})
    assert r.status_code == 400
    assert "unknown LoRA adapter 'zzz'" in r.text and r.json()["error"]["param"] == "model"
    r = requests.post(lora_server.url + "/v1/completions",
                      json={"model": "zzz", "prompt": prompts[0], "max_tokens": 1})
    assert r.status_code == 404


def test_models_lists_the_adapters(lora_server):
    data = requests.get(lora_server.url + "/v1/models").json()["data"]
    by_id = {m["id"]: m for m in data}
    assert set(by_id) >= {"llama", "a", "b"}
    assert by_id["a"]["parent"] == "llama" and by_id["a"]["root"] == adapter("llama", "a")
    assert requests.get(lora_server.url + "/v1/models/b").json()["id"] == "b"


def test_load_and_unload_at_run_time(lora_server, reference):
    prompts, greedy = reference
    url = lora_server.url
    r = requests.post(url + "/load_lora_adapter",
                      json={"lora_name": "a2", "lora_path": adapter("llama", "a")})
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True and "a2" in r.json()["loaded_adapters"]
    assert generate(lora_server, prompts[1], "a2")["output_ids"] == greedy["a"][1]
    r = requests.post(url + "/load_lora_adapter",
                      json={"lora_name": "a2", "lora_path": adapter("llama", "a")})
    assert r.status_code == 400 and "already loaded" in r.text
    r = requests.post(url + "/unload_lora_adapter", json={"lora_name": "a2"})
    assert r.status_code == 200 and "a2" not in r.json()["loaded_adapters"]
    r = requests.post(url + "/generate", json=greedy_body(prompts[0], "a2"))
    assert r.status_code == 400
    assert "unknown LoRA adapter 'a2'" in r.text and r.json()["error"]["param"] == "lora_path"
    r = requests.post(url + "/unload_lora_adapter", json={"lora_name": "a2"})
    assert r.status_code == 400 and "'a2' is not loaded" in r.text
    r = requests.post(url + "/load_lora_adapter", json={"lora_name": "x"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "lora_path"


def write_safetensors(path, tensors):
    """A minimal safetensors writer (F32): name -> (shape, flat values)."""
    header, data = {}, b""
    for name, (shape, values) in sorted(tensors.items()):
        blob = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + data)


def test_adapters_that_do_not_fit_are_refused(lora_server, tmp_path):
    url = lora_server.url
    # qwen2's adapter b targets gate/up/down of another intermediate size.
    r = requests.post(url + "/load_lora_adapter",
                      json={"lora_name": "qb", "lora_path": adapter("qwen2", "b")})
    assert r.status_code == 400
    assert "LoRA adapter 'qb'" in r.text and "does not fit the base model" in r.text
    # A target module the model does not have.
    bad = tmp_path / "w_pack"
    bad.mkdir()
    (bad / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2, "lora_alpha": 4}))
    prefix = "base_model.model.model.layers.0.self_attn.w_pack"
    write_safetensors(bad / "adapter_model.safetensors", {
        prefix + ".lora_A.weight": ([2, 64], [0.0] * 128),
        prefix + ".lora_B.weight": ([64, 2], [0.0] * 128)})
    r = requests.post(url + "/load_lora_adapter", json={"lora_name": "wp", "lora_path": str(bad)})
    assert r.status_code == 400
    assert "LoRA adapter 'wp'" in r.text and "does not exist in the base model" in r.text
    r = requests.post(url + "/load_lora_adapter",
                      json={"lora_name": "nothing", "lora_path": str(tmp_path / "missing")})
    assert r.status_code == 400 and "LoRA adapter 'nothing'" in r.text


def test_lora_off_answers_400_naming_the_field(server):
    r = requests.post(server.url + "/generate", json={"text": "x", "lora_path": "a"})
    assert r.status_code == 400 and "LoRA is not enabled" in r.text
    assert r.json()["error"]["param"] == "lora_path"
    r = requests.post(server.url + "/load_lora_adapter",
                      json={"lora_name": "a", "lora_path": adapter("qwen2", "a")})
    assert r.status_code == 400 and "LoRA is not enabled" in r.text


def test_rank_above_max_lora_rank_stops_startup():
    proc = subprocess.run(
        [sable_binary(), "serve", "--model-path", LLAMA_DIR, "--device", "cpu",
         "--tokenizer-path", TOKENIZER_DIR, "--lora-paths", f"a={adapter('llama', 'a')}",
         "--max-lora-rank", "4", "--port", "1"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "LoRA adapter 'a': rank 8 is above --max-lora-rank 4" in proc.stderr + proc.stdout


def test_adapter_from_a_hub_id(reference, tmp_path):
    """--lora-paths NAME=ORG/NAME goes through the Hub resolver: the mock Hub's two adapter files
    land in the HF cache layout and serve PEFT's tokens."""
    from mock_hub import MockHub

    hub = MockHub()
    try:
        hub.add_repo("sable-test/lora-a", adapter("llama", "a"),
                     names=["adapter_config.json", "adapter_model.safetensors"])
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HF_", "HUGGING", "TRANSFORMERS_"))}
        env.update(HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=hub.url)
        s = Server("--lora-paths", "a=sable-test/lora-a", "--tokenizer-path", TOKENIZER_DIR,
                   "--skip-server-warmup", model_dir=LLAMA_DIR, model_name="llama", env=env)
        try:
            prompts, greedy = reference
            assert generate(s, prompts[1], "a")["output_ids"] == greedy["a"][1]
            snapshots = tmp_path / "hf" / "hub" / "models--sable-test--lora-a" / "snapshots"
            assert any((d / "adapter_model.safetensors").exists() for d in snapshots.iterdir())
        finally:
            s.stop()
    finally:
        hub.close()
