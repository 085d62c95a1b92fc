"""return_hidden_states end to end (`sable serve --enable-return-hidden-states`).

/generate on the golden qwen2 checkpoint (token ids): meta_info.hidden_states is SGLang's shape,
the prefill entry (one row per prompt position, the last matching the reference last_hidden_i)
then one row per fed-back output token; batches carry one list per item. The OpenAI routes give
choices[i].hidden_states (the last entry). Without the flag the request is a 400 naming it.
"""
import json
import os

import pytest
import requests

from conftest import SOURCE_DIR, Server
from scoring_models import rel_err, reference

QWEN2 = os.path.join(SOURCE_DIR, "tests", "golden", "models", "qwen2")
HIDDEN = 32  # qwen2_tok hidden_size
QWEN2_HIDDEN = 64


@pytest.fixture(scope="module")
def hs_server():
    s = Server("--enable-return-hidden-states", "--skip-tokenizer-init", model_dir=QWEN2,
               model_name="qwen2")
    yield s
    assert s.stop() == 0, s.read_log()


@pytest.fixture(scope="module")
def hs_text_server():
    s = Server("--enable-return-hidden-states")
    yield s
    assert s.stop() == 0, s.read_log()


def generate(server, body):
    r = requests.post(server.url + "/generate", json=body, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_generate_hidden_states_match_the_reference(hs_server):
    with open(os.path.join(QWEN2, "golden.json")) as f:
        prompts = json.load(f)["prompts"]
    out = generate(hs_server, {"input_ids": prompts, "return_hidden_states": True,
                               "sampling_params": {"max_new_tokens": 3, "temperature": 0}})
    for i, item in enumerate(out):
        hs = item["meta_info"]["hidden_states"]
        assert len(hs) == 1 + 2  # prefill, then the two output tokens fed back
        assert len(hs[0]) == len(prompts[i]) and all(len(row) == QWEN2_HIDDEN for row in hs[0])
        assert rel_err(hs[0][-1], reference("qwen2", f"last_hidden_{i}")) <= 1e-4
        assert all(len(row) == QWEN2_HIDDEN and isinstance(row[0], float) for row in hs[1:])
    # Not asked: no key.
    plain = generate(hs_server, {"input_ids": prompts[0], "sampling_params": {"max_new_tokens": 1}})
    assert "hidden_states" not in plain["meta_info"]


def test_openai_routes_give_the_last_hidden_state(hs_text_server):
    body = {"prompt": "hello there", "max_tokens": 3, "temperature": 0}
    native = generate(hs_text_server, {"text": "hello there", "return_hidden_states": True,
                                       "sampling_params": {"max_new_tokens": 3, "temperature": 0}})
    r = requests.post(hs_text_server.url + "/v1/completions",
                      json={"model": "qwen2_tok", **body, "return_hidden_states": True}, timeout=60)
    assert r.status_code == 200, r.text
    got = r.json()["choices"][0]["hidden_states"]
    want = native["meta_info"]["hidden_states"][-1]
    assert len(got) == HIDDEN and max(abs(a - b) for a, b in zip(got, want)) < 1e-5
    r = requests.post(hs_text_server.url + "/v1/chat/completions",
                      json={"model": "qwen2_tok", "messages": [{"role": "user", "content": "hi"}],
                            "max_tokens": 2, "return_hidden_states": True}, timeout=60)
    assert r.status_code == 200, r.text
    assert len(r.json()["choices"][0]["hidden_states"]) == HIDDEN
    r = requests.post(hs_text_server.url + "/v1/completions",
                      json={"model": "qwen2_tok", **body, "return_hidden_states": True,
                            "stream": True}, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["param"] == "return_hidden_states"


def test_refused_without_the_flag(server):
    r = requests.post(server.url + "/generate",
                      json={"text": "hi", "return_hidden_states": True}, timeout=60)
    assert r.status_code == 400, r.text
    assert "--enable-return-hidden-states" in r.json()["error"]["message"]
