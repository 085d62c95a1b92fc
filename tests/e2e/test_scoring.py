"""Scoring models end to end: `sable serve --is-embedding` on the golden reward model
(LlamaForSequenceClassification), cross-encoder (XLMRobertaForSequenceClassification) and BERT
embedding model, each with a small test tokenizer (scoring_models.py).

/classify (SGLang's reward route) against the reference scores; /v1/rerank (order, top_n,
return_documents, the XLM-R pair template, truncation of long documents, validation); BERT through
/encode and /v1/embeddings (CLS pooling against the reference, token arrays, base64, usage),
sentence-transformers pooling files and Matryoshka `dimensions`; every route refused with a 400
naming the route and the served model's kind.
"""
import base64
import struct

import pytest
import requests

from conftest import Server
from scoring_models import (model_dir, normalized, prompts, reference, rel_err, text_ids)

TOL = 1e-4  # the golden tolerance (relative to the largest reference value)


def post(server, path, body):
    return requests.post(server.url + path, json=body, timeout=60)


def ok(server, path, body):
    r = post(server, path, body)
    assert r.status_code == 200, r.text
    return r.json()


def start(path, name, *extra):
    return Server("--is-embedding", "--max-running-requests", "8", *extra, model_dir=path,
                  model_name=name)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return str(tmp_path_factory.mktemp("scoring"))


@pytest.fixture(scope="module")
def reward(tmp):
    s = start(model_dir(tmp, "llama_reward", "llama"), "reward")
    yield s
    assert s.stop() == 0, s.read_log()


@pytest.fixture(scope="module")
def reranker(tmp):
    s = start(model_dir(tmp, "xlmr_rerank", "roberta"), "reranker")
    yield s
    assert s.stop() == 0, s.read_log()


@pytest.fixture(scope="module")
def bert(tmp):
    s = start(model_dir(tmp, "bert_embed", "bert"), "bert")
    yield s
    assert s.stop() == 0, s.read_log()


# --- /classify -------------------------------------------------------------------------------

def test_classify_matches_the_reference(reward):
    ps = prompts("llama_reward")
    out = ok(reward, "/classify", {"input_ids": ps})
    assert isinstance(out, list) and len(out) == len(ps)
    for i, item in enumerate(out):
        assert len(item["embedding"]) == 1  # num_labels
        assert rel_err(item["embedding"], reference("llama_reward", f"score_{i}")) <= TOL
        assert item["meta_info"]["prompt_tokens"] == len(ps[i])
    one = ok(reward, "/classify", {"input_ids": ps[1], "rid": "r1"})
    assert isinstance(one, dict) and one["meta_info"]["id"] == "r1"
    assert abs(one["embedding"][0] - out[1]["embedding"][0]) < 1e-6


def test_classify_text_is_tokenized_with_bos(reward):
    text = "a fine answer"
    by_text = ok(reward, "/classify", {"text": [text, "x"]})
    by_ids = ok(reward, "/classify", {"input_ids": [[1] + text_ids(text), [1] + text_ids("x")]})
    for a, b in zip(by_text, by_ids):
        assert abs(a["embedding"][0] - b["embedding"][0]) < 1e-6
    # /encode is the same request on a score model (SGLang).
    enc = ok(reward, "/encode", {"text": text})
    assert abs(enc["embedding"][0] - by_text[0]["embedding"][0]) < 1e-6


# --- /v1/rerank ------------------------------------------------------------------------------

def pair_ids(query, doc):
    """XLM-R's pair template: <s> q </s></s> d </s>."""
    return [0] + text_ids(query) + [2, 2] + text_ids(doc) + [2]


def test_rerank_orders_best_first(reranker):
    query = "what is sable"
    docs = ["a runtime", "a small black animal", "an llm serving engine", "heraldic black"]
    out = ok(reranker, "/v1/rerank", {"query": query, "documents": docs})
    assert [set(x) for x in out] == [{"score", "document", "index", "meta_info"}] * len(docs)
    scores = [x["score"] for x in out]
    assert scores == sorted(scores, reverse=True)
    assert sorted(x["index"] for x in out) == list(range(len(docs)))
    # Each score is the cross-encoder's score of the templated pair.
    want = ok(reranker, "/encode", {"input_ids": [pair_ids(query, d) for d in docs]})
    for x in out:
        assert x["document"] == docs[x["index"]]
        assert abs(x["score"] - want[x["index"]]["embedding"][0]) < 1e-6
        assert x["meta_info"]["prompt_tokens"] == len(pair_ids(query, docs[x["index"]]))
    # /encode's [[query, doc]] pairs use the same template.
    pairs = ok(reranker, "/encode", {"text": [[query, d] for d in docs]})
    for p, w in zip(pairs, want):
        assert abs(p["embedding"][0] - w["embedding"][0]) < 1e-6
    top = ok(reranker, "/v1/rerank",
             {"query": query, "documents": docs, "top_n": 2, "return_documents": False})
    assert [x["index"] for x in top] == [x["index"] for x in out[:2]]
    assert all("document" not in x for x in top)
    assert len(ok(reranker, "/v1/rerank", {"query": query, "documents": docs, "top_n": 99})) == 4


def test_rerank_golden_score(reranker):
    # The reference prompt 1 is <s> ... </s>: its score through /encode's ids path.
    ps = prompts("xlmr_rerank")
    out = ok(reranker, "/encode", {"input_ids": ps})
    for i, item in enumerate(out):
        assert rel_err(item["embedding"], reference("xlmr_rerank", f"score_{i}")) <= TOL


def test_rerank_truncates_the_document(reranker):
    query, doc = "q" * 20, "d" * 300  # the context is 128 positions
    out = ok(reranker, "/v1/rerank", {"query": query, "documents": [doc]})
    # Inputs must be shorter than the context (as SGLang requires): 127 tokens at most.
    kept = 127 - (len(query) + 4)
    want = ok(reranker, "/encode", {"input_ids": pair_ids(query, doc[:kept])})
    assert abs(out[0]["score"] - want["embedding"][0]) < 1e-6
    assert out[0]["meta_info"]["prompt_tokens"] == 127
    r = post(reranker, "/v1/rerank", {"query": "q" * 200, "documents": ["d"]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "query"


@pytest.mark.parametrize("body,message,param", [
    ({"documents": ["a"]}, "query is required", "query"),
    ({"query": "", "documents": ["a"]}, "Query cannot be empty", "query"),
    ({"query": "  ", "documents": ["a"]}, "Query cannot be empty or whitespace only", "query"),
    ({"query": "q", "documents": []}, "Documents cannot be empty", "documents"),
    ({"query": "q", "documents": ["a", ""]}, "Each document must be a non-empty string", "documents"),
    ({"query": "q", "documents": [" "]}, "Each document cannot be empty or whitespace only",
     "documents"),
    ({"query": "q", "documents": ["a"], "top_n": 0}, "top_n should be larger than 0", "top_n"),
    ({"query": "q", "documents": ["a"], "return_documents": "yes"}, "return_documents", "return_documents"),
    ({"query": ["q"], "documents": ["a"]}, "query must be a string", "query"),
])
def test_rerank_errors(reranker, body, message, param):
    r = post(reranker, "/v1/rerank", body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert message in err["message"] and err["param"] == param


# --- BERT embeddings -------------------------------------------------------------------------

def test_bert_encode_is_normalized_cls(bert):
    ps = prompts("bert_embed")
    out = ok(bert, "/encode", {"input_ids": ps})
    for i, item in enumerate(out):
        assert rel_err(item["embedding"], normalized(reference("bert_embed", f"cls_{i}"))) <= TOL


def test_bert_openai_embeddings(bert):
    ps = prompts("bert_embed")
    body = ok(bert, "/v1/embeddings", {"model": "bert", "input": ps})
    assert [d["index"] for d in body["data"]] == [0, 1, 2]
    n = sum(len(p) for p in ps)
    assert body["usage"]["prompt_tokens"] == n and body["usage"]["total_tokens"] == n
    for i, d in enumerate(body["data"]):
        assert rel_err(d["embedding"], normalized(reference("bert_embed", f"cls_{i}"))) <= TOL
    b64 = ok(bert, "/v1/embeddings", {"model": "bert", "input": ps[0], "encoding_format": "base64"})
    raw = base64.b64decode(b64["data"][0]["embedding"])
    assert max(abs(a - b) for a, b in zip(struct.unpack("<64f", raw), body["data"][0]["embedding"])) < 1e-7
    # Text gets [CLS] ... [SEP] from the tokenizer.
    by_text = ok(bert, "/v1/embeddings", {"model": "bert", "input": ["hello", "world"]})
    by_ids = ok(bert, "/v1/embeddings",
                {"model": "bert", "input": [[101] + text_ids(w) + [102] for w in ("hello", "world")]})
    for a, b in zip(by_text["data"], by_ids["data"]):
        assert max(abs(x - y) for x, y in zip(a["embedding"], b["embedding"])) < 1e-6
    r = post(bert, "/v1/embeddings", {"model": "bert", "input": "hi", "dimensions": 16})
    assert r.status_code == 400 and "matryoshka" in r.json()["error"]["message"]
    r = post(bert, "/encode", {"text": [["a", "b"]]})
    assert r.status_code == 400 and "pairs need a score" in r.json()["error"]["message"]


def test_sentence_transformers_pooling_and_matryoshka(tmp):
    files = {"modules.json": [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
        "1_Pooling/config.json": {"word_embedding_dimension": 64, "pooling_mode_cls_token": False,
                                  "pooling_mode_mean_tokens": True}}
    path = model_dir(tmp, "bert_embed", "bert", tag="st", files=files,
                     config_extra={"matryoshka_dimensions": [16, 64]})
    s = start(path, "st")
    try:
        ps = prompts("bert_embed")
        out = ok(s, "/encode", {"input_ids": ps})
        for i, item in enumerate(out):
            assert rel_err(item["embedding"], normalized(reference("bert_embed", f"mean_{i}"))) <= TOL
        # Matryoshka: the first 16 values of the mean, then normalised.
        short = ok(s, "/v1/embeddings", {"model": "st", "input": ps[1], "dimensions": 16})
        got = short["data"][0]["embedding"]
        assert len(got) == 16
        assert rel_err(got, normalized(reference("bert_embed", "mean_1")[:16])) <= TOL
        enc = ok(s, "/encode", {"input_ids": ps[1], "dimensions": 16})
        assert max(abs(a - b) for a, b in zip(enc["embedding"], got)) < 1e-7
        r = post(s, "/v1/embeddings", {"model": "st", "input": ps[1], "dimensions": 20})
        assert r.status_code == 400 and "[16, 64]" in r.json()["error"]["message"]
        r = post(s, "/v1/embeddings", {"model": "st", "input": ps[1], "dimensions": 0})
        assert r.status_code == 400 and r.json()["error"]["param"] == "dimensions"
    finally:
        assert s.stop() == 0


def test_pooling_flag_overrides(tmp):
    s = start(model_dir(tmp, "bert_embed", "bert"), "raw", "--pooling", "mean",
              "--pooling-normalize", "false")
    try:
        out = ok(s, "/encode", {"input_ids": prompts("bert_embed")[2]})
        assert rel_err(out["embedding"], reference("bert_embed", "mean_2")) <= TOL
    finally:
        assert s.stop() == 0


# --- the wrong kind of model -----------------------------------------------------------------

def refused(server, path, body, *needles):
    r = post(server, path, body)
    assert r.status_code == 400, r.text
    msg = r.json()["error"]["message"]
    for n in needles:
        assert n in msg, msg


def test_routes_refuse_the_wrong_model_kind(server, reranker, bert):
    gen = {"text": "hi", "sampling_params": {"max_new_tokens": 1}}
    refused(reranker, "/generate", gen, "/generate", "score model",
            "XLMRobertaForSequenceClassification")
    refused(bert, "/generate", gen, "/generate", "an embedding model", "BertModel")
    refused(reranker, "/v1/completions", {"model": "reranker", "prompt": "hi"}, "/v1/completions",
            "score model")
    refused(reranker, "/v1/chat/completions",
            {"model": "reranker", "messages": [{"role": "user", "content": "hi"}]},
            "/v1/chat/completions", "score model")
    refused(reranker, "/v1/embeddings", {"model": "reranker", "input": "hi"}, "/v1/embeddings",
            "score model")
    refused(bert, "/v1/rerank", {"query": "q", "documents": ["d"]}, "/v1/rerank",
            "an embedding model")
    refused(server, "/v1/rerank", {"query": "q", "documents": ["d"]}, "/v1/rerank",
            "generation model")
    refused(server, "/classify", {"text": "hi"}, "/classify", "--is-embedding")
    refused(server, "/encode", {"text": "hi"}, "/encode", "--is-embedding")
