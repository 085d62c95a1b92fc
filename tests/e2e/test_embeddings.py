"""Embeddings end to end: a second `sable serve --is-embedding` on the golden qwen2_tok model.

/v1/embeddings (text and ids, single and batch, float and base64, the official openai client),
/encode (single and batch), the validation errors, generation refused in embedding mode, embedding
refused by the generation server, /get_model_info and /health_generate.
"""
import base64
import math
import struct

import openai
import pytest
import requests

from conftest import MODEL_NAME, Server

HIDDEN = 32  # qwen2_tok config.json hidden_size


@pytest.fixture(scope="module")
def emb_server():
    s = Server("--is-embedding", "--max-running-requests", "8")
    yield s
    code = s.stop()
    assert code == 0, f"sable serve exited with {code} after SIGTERM:\n{s.read_log()}"


def post(server, path, body):
    return requests.post(server.url + path, json=body, timeout=60)


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def close(a, b, tol=1e-5):
    return len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b)) <= tol


def embeddings(server, inp, **extra):
    r = post(server, "/v1/embeddings", {"model": MODEL_NAME, "input": inp, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_single_text(emb_server, golden):
    body = embeddings(emb_server, golden["texts"][0])
    assert body["object"] == "list"
    assert body["model"].endswith("qwen2_tok")
    assert len(body["data"]) == 1
    item = body["data"][0]
    assert item["object"] == "embedding" and item["index"] == 0
    assert len(item["embedding"]) == HIDDEN
    assert abs(norm(item["embedding"]) - 1.0) < 1e-5
    n = len(golden["ids"][0])
    assert body["usage"]["prompt_tokens"] == n and body["usage"]["total_tokens"] == n


def test_batch_text_and_ids_agree(emb_server, golden):
    texts = golden["texts"]
    by_text = embeddings(emb_server, texts)
    by_ids = embeddings(emb_server, golden["ids"])
    assert [d["index"] for d in by_text["data"]] == list(range(len(texts)))
    assert by_text["usage"]["prompt_tokens"] == sum(len(i) for i in golden["ids"])
    for a, b in zip(by_text["data"], by_ids["data"]):
        assert close(a["embedding"], b["embedding"])
    # One prompt alone gives the same vector as inside the batch.
    for i, text in enumerate(texts):
        alone = embeddings(emb_server, text)["data"][0]["embedding"]
        assert close(alone, by_text["data"][i]["embedding"])
    # A flat id list is one prompt.
    one = embeddings(emb_server, golden["ids"][1])
    assert len(one["data"]) == 1 and close(one["data"][0]["embedding"], by_ids["data"][1]["embedding"])
    # Different prompts, different vectors.
    assert not close(by_text["data"][0]["embedding"], by_text["data"][1]["embedding"], 1e-3)


def test_base64_and_dimensions(emb_server, golden):
    floats = embeddings(emb_server, golden["texts"][0])["data"][0]["embedding"]
    b64 = embeddings(emb_server, golden["texts"][0], encoding_format="base64")["data"][0]["embedding"]
    raw = base64.b64decode(b64)
    decoded = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    assert close(decoded, floats, 1e-6)
    # qwen2_tok declares no matryoshka_dimensions: truncation is refused (SGLang's message).
    for dims in (8, HIDDEN):
        r = post(emb_server, "/v1/embeddings", {"model": MODEL_NAME, "input": "hi", "dimensions": dims})
        assert r.status_code == 400 and r.json()["error"]["param"] == "dimensions"
        assert "does not support matryoshka" in r.json()["error"]["message"]
    r = post(emb_server, "/v1/embeddings",
             {"model": MODEL_NAME, "input": "hi", "encoding_format": "int8"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "encoding_format"


def test_openai_client(emb_server, golden):
    client = openai.OpenAI(base_url=emb_server.url + "/v1", api_key="none")
    want = embeddings(emb_server, golden["texts"])["data"]
    for fmt in ("float", None):  # None: the client's default (it may ask for base64)
        kwargs = {"encoding_format": fmt} if fmt else {}
        res = client.embeddings.create(model=MODEL_NAME, input=golden["texts"], **kwargs)
        assert len(res.data) == len(want)
        for got, exp in zip(res.data, want):
            assert close(list(got.embedding), exp["embedding"], 1e-6)
        assert res.usage.prompt_tokens == sum(len(i) for i in golden["ids"])
    single = client.embeddings.create(model=MODEL_NAME, input=golden["texts"][2],
                                      encoding_format="float")
    assert close(single.data[0].embedding, want[2]["embedding"])
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=MODEL_NAME, input="")


@pytest.mark.parametrize("inp,message", [
    ("", "Input cannot be empty"),
    ("   ", "Input cannot be empty or whitespace only"),
    ([], "Input cannot be empty"),
    (["ok", "  "], "Input at index 1 cannot be empty or whitespace only"),
    ([1, -2, 3], "must be non-negative"),
    ([[1, 2], [3, -4]], "must be non-negative"),
    ([[1, 2], []], "Input at index 1 cannot be empty"),
    ([1, 10**7], "outside the vocabulary"),
    ({"text": "x"}, "input must be"),
])
def test_openai_errors(emb_server, inp, message):
    r = post(emb_server, "/v1/embeddings", {"model": MODEL_NAME, "input": inp})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert message in err["message"]
    assert err["param"] == "input"


def test_openai_model_and_length_errors(emb_server):
    r = post(emb_server, "/v1/embeddings", {"model": "nope", "input": "hi"})
    assert r.status_code == 404 and r.json()["error"]["param"] == "model"
    assert r.json()["error"]["code"] == "model_not_found"
    assert "does not exist" in r.json()["error"]["message"]
    r = post(emb_server, "/v1/embeddings", {"model": MODEL_NAME})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"
    r = post(emb_server, "/v1/embeddings", {"model": MODEL_NAME, "input": [1] * 5000})
    assert r.status_code == 400 and "context length" in r.json()["error"]["message"]
    assert r.json()["error"]["code"] == "context_length_exceeded"
    # No model field: the served model.
    r = post(emb_server, "/v1/embeddings", {"input": "hi"})
    assert r.status_code == 200


def test_encode(emb_server, golden):
    want = embeddings(emb_server, golden["texts"])["data"]
    r = post(emb_server, "/encode", {"text": golden["texts"][0], "rid": "enc-1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert close(body["embedding"], want[0]["embedding"])
    meta = body["meta_info"]
    assert meta["id"] == "enc-1"
    assert meta["prompt_tokens"] == len(golden["ids"][0])
    assert meta["finish_reason"] == {"type": "length", "length": 0}
    assert meta["e2e_latency"] >= 0 and "weight_version" in meta
    assert "completion_tokens" not in meta
    batch = requests.put(emb_server.url + "/encode", json={"text": golden["texts"]}, timeout=60)
    assert batch.status_code == 200
    items = batch.json()
    assert isinstance(items, list) and len(items) == len(want)
    for got, exp, ids in zip(items, want, golden["ids"]):
        assert close(got["embedding"], exp["embedding"])
        assert got["meta_info"]["prompt_tokens"] == len(ids)
    by_ids = post(emb_server, "/encode", {"input_ids": golden["ids"]}).json()
    for got, exp in zip(by_ids, want):
        assert close(got["embedding"], exp["embedding"])
    one = post(emb_server, "/encode", {"input_ids": golden["ids"][3],
                                       "sampling_params": {"max_new_tokens": 1}}).json()
    assert close(one["embedding"], want[3]["embedding"])


@pytest.mark.parametrize("body,message", [
    ({}, "Either text or input_ids should be provided"),
    ({"text": "a", "input_ids": [1]}, "cannot be provided at the same time"),
    ({"text": ""}, "cannot be empty"),
    ({"input_ids": [1, -1]}, "must be non-negative"),
    ({"input_ids": [[1], []]}, "Input at index 1 cannot be empty"),
    ({"input_ids": [10**7]}, "outside the vocabulary"),
    ({"text": [["query", "doc"]]}, "pairs need a score (cross-encoder) model"),
    ({"text": "a", "dimensions": 3}, "dimensions"),
])
def test_encode_errors(emb_server, body, message):
    r = post(emb_server, "/encode", body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"]


def test_generation_refused(emb_server):
    r = post(emb_server, "/generate", {"text": "hello", "sampling_params": {"max_new_tokens": 2}})
    assert r.status_code == 400
    assert "/generate needs a generation model" in r.json()["error"]["message"]
    assert "an embedding model (Qwen2ForCausalLM)" in r.json()["error"]["message"]
    r = post(emb_server, "/generate", {"text": "hello", "stream": True})
    assert r.status_code == 400
    r = post(emb_server, "/v1/completions", {"model": MODEL_NAME, "prompt": "hi", "max_tokens": 2})
    assert r.status_code == 400
    assert "/v1/completions needs a generation model" in r.json()["error"]["message"]


def test_model_info_and_health(emb_server):
    info = requests.get(emb_server.url + "/get_model_info", timeout=10).json()
    assert info["is_generation"] is False
    assert requests.get(emb_server.url + "/health_generate", timeout=30).status_code == 200
    server_info = requests.get(emb_server.url + "/get_server_info", timeout=10).json()
    assert server_info["is_embedding"] is True
    assert server_info["internal_states"][0]["finished_requests"] > 0


def test_generation_server_refuses_embeddings(server):
    r = post(server, "/v1/embeddings", {"model": MODEL_NAME, "input": "hi"})
    assert r.status_code == 400
    assert "--is-embedding" in r.json()["error"]["message"]
    r = post(server, "/encode", {"text": "hi"})
    assert r.status_code == 400
    assert "--is-embedding" in r.json()["error"]["message"]
    assert requests.get(server.url + "/get_model_info", timeout=10).json()["is_generation"] is True
