"""--skip-tokenizer-init: a checkpoint without tokenizer files, served with token ids only.

The checkpoint is the golden qwen2_tok model without its tokenizer files (config.json and the
weights linked into a temporary folder). Without the flag the server must refuse to start and name
the flag; with it, input_ids go in and output_ids come out (no "text" key, as SGLang answers), and
every request that needs text is refused with a 400 naming the field. The warm-up request runs
during startup, so a server that gets ready proves it sent no text.
"""
import os
import subprocess

import pytest
import requests

from conftest import MODEL_DIR, Server, free_port, sable_binary

CHECKPOINT_FILES = ["config.json", "model.safetensors"]


@pytest.fixture(scope="module")
def bare_checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("no_tokenizer")
    for name in CHECKPOINT_FILES:
        os.symlink(os.path.join(MODEL_DIR, name), d / name)
    assert not (d / "tokenizer.json").exists()
    return str(d)


@pytest.fixture(scope="module")
def ids_server(bare_checkpoint):
    s = Server("--skip-tokenizer-init", model_dir=bare_checkpoint)
    yield s
    code = s.stop()
    assert code == 0, s.read_log()


def test_without_the_flag_startup_fails_naming_it(bare_checkpoint):
    proc = subprocess.run(
        [sable_binary(), "serve", "--model-path", bare_checkpoint, "--device", "cpu",
         "--host", "127.0.0.1", "--port", str(free_port())],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "tokenizer.json" in out and "--skip-tokenizer-init" in out, out


def test_ids_in_ids_out(ids_server):
    body = {"input_ids": [9707, 11, 1879], "sampling_params": {"max_new_tokens": 4, "temperature": 0,
                                                               "ignore_eos": True}}
    r = requests.post(ids_server.url + "/generate", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert "text" not in out
    assert len(out["output_ids"]) == 4
    assert out["meta_info"]["prompt_tokens"] == 3 and out["meta_info"]["completion_tokens"] == 4
    # Batch and stream keep the shape.
    r = requests.post(ids_server.url + "/generate",
                      json={**body, "input_ids": [[9707, 11], [1879]]})
    assert [len(o["output_ids"]) for o in r.json()] == [4, 4]
    with requests.post(ids_server.url + "/generate", json={**body, "stream": True}, stream=True) as r:
        chunks = [line for line in r.iter_lines() if line.startswith(b"data: {")]
    assert chunks and all(b'"text"' not in c for c in chunks)
    # /health_generate sends token ids too.
    assert requests.get(ids_server.url + "/health_generate").status_code == 200


@pytest.mark.parametrize("path,body,field", [
    ("/generate", {"text": "hello"}, "text"),
    ("/generate", {"input_ids": [1, 2], "sampling_params": {"stop": ["x"]}}, "stop"),
    ("/generate", {"input_ids": [1, 2], "sampling_params": {"regex": "a+"}}, "regex"),
    ("/generate", {"input_ids": [1, 2], "return_logprob": True, "return_text_in_logprobs": True},
     "return_text_in_logprobs"),
    ("/v1/completions", {"prompt": [1, 2]}, "prompt"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, "messages"),
    ("/tokenize", {"prompt": "hi"}, "prompt"),
    ("/detokenize", {"tokens": [1, 2]}, "tokens"),
])
def test_text_is_refused_naming_the_field(ids_server, path, body, field):
    r = requests.post(ids_server.url + path, json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == field, err
    assert "tokenizer" in err["message"], err
