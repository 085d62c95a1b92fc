"""SGLang's native routes on the real server with the golden qwen2_tok model."""
import json
import time

import pytest
import requests

from conftest import MODEL_DIR, MODEL_NAME, sse_events

GREEDY = {"temperature": 0, "max_new_tokens": 16, "ignore_eos": True}


def generate(server, body, **kw):
    return requests.post(server.url + "/generate", json=body, headers=server.headers(), timeout=120, **kw)


@pytest.mark.parametrize("i", range(4))
def test_generate_golden_greedy_text(server, golden, i):
    r = generate(server, {"text": golden["texts"][i], "sampling_params": GREEDY})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["output_ids"] == golden["greedy_ids"][i]
    assert out["text"] == golden["greedy_text"][i]
    meta = out["meta_info"]
    assert meta["finish_reason"] == {"type": "length", "length": 16}
    assert meta["prompt_tokens"] == len(golden["ids"][i])
    assert meta["completion_tokens"] == 16
    assert isinstance(meta["e2e_latency"], float)


def test_generate_input_ids_batch(server, golden):
    r = generate(server, {"input_ids": golden["ids"][:2], "sampling_params": GREEDY})
    assert r.status_code == 200, r.text
    outs = r.json()
    assert [o["text"] for o in outs] == golden["greedy_text"][:2]


def test_generate_stream_last_event_equals_nonstream(server, golden):
    body = {"text": golden["texts"][1], "sampling_params": GREEDY, "stream": True}
    r = generate(server, body, stream=True)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(r)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len(chunks) >= 2
    assert all(c["meta_info"]["finish_reason"] is None for c in chunks[:-1])
    # Cumulative text: each event extends the previous one; the last is the whole output.
    for a, b in zip(chunks, chunks[1:]):
        assert b["text"].startswith(a["text"])
    assert chunks[-1]["text"] == golden["greedy_text"][1]
    assert chunks[-1]["meta_info"]["finish_reason"]["type"] == "length"


def test_generate_logprobs(server, golden):
    body = {"text": golden["texts"][0], "sampling_params": {**GREEDY, "max_new_tokens": 4},
            "return_logprob": True, "top_logprobs_num": 2, "return_text_in_logprobs": True}
    meta = generate(server, body).json()["meta_info"]
    lps = meta["output_token_logprobs"]
    assert [t[1] for t in lps] == golden["greedy_ids"][0][:4]
    assert all(t[0] <= 0 and isinstance(t[2], str) for t in lps)
    # Greedy: the chosen token is the best of the top-2.
    assert [row[0][1] for row in meta["output_top_logprobs"]] == golden["greedy_ids"][0][:4]


def test_get_model_info_keys(server):
    info = requests.get(server.url + "/get_model_info").json()
    assert set(info) == {"model_path", "served_model_name", "is_generation", "tokenizer_path",
                         "preferred_sampling_params", "weight_version", "reasoning_parser",
                         "tool_call_parser", "has_image_understanding", "has_audio_understanding"}
    assert info["model_path"] == MODEL_DIR
    assert info["served_model_name"] == MODEL_NAME
    assert info["is_generation"] is True


def test_get_server_info(server):
    info = requests.get(server.url + "/get_server_info").json()
    assert info["port"] == server.port
    assert info["model_path"] == MODEL_DIR
    assert info["max_total_num_tokens"] > 0
    assert "internal_states" in info


def test_server_info_splits_the_step_time(server):
    requests.post(server.url + "/generate",
                  json={"text": "Hello", "sampling_params": {"max_new_tokens": 4}}).raise_for_status()
    state = requests.get(server.url + "/server_info").json()["internal_states"][0]
    # The scheduler thread's time per step: the model's forward + sampling, the host work beside it.
    assert state["step_time_us"] > 0
    assert 0 < state["model_time_us"] <= state["step_time_us"]
    assert state["host_time_us"] == pytest.approx(state["step_time_us"] - state["model_time_us"])


def test_health(server):
    assert requests.get(server.url + "/health").status_code == 200
    assert requests.get(server.url + "/health_generate").status_code == 200


def test_flush_cache(server):
    r = requests.post(server.url + "/flush_cache")
    assert r.status_code == 200
    assert r.text.startswith("Cache flushed.")


def test_tokenize_detokenize_roundtrip(server, golden):
    for text, ids in zip(golden["texts"], golden["ids"]):
        t = requests.post(server.url + "/tokenize", json={"prompt": text}).json()
        assert t["tokens"] == ids
        assert t["count"] == len(ids)
        assert t["max_model_len"] > 0
        d = requests.post(server.url + "/detokenize", json={"tokens": t["tokens"]}).json()
        assert d["text"] == text


def test_update_weights_from_disk(server, golden):
    r = requests.post(server.url + "/update_weights_from_disk", json={"model_path": MODEL_DIR})
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True
    # Still serving the same function after the swap.
    out = generate(server, {"text": golden["texts"][0], "sampling_params": GREEDY}).json()
    assert out["text"] == golden["greedy_text"][0]
    bad = "/nonexistent/checkpoint"
    r = requests.post(server.url + "/update_weights_from_disk", json={"model_path": bad})
    assert r.status_code == 400
    assert r.json()["success"] is False
    assert bad in r.json()["message"]
    out = generate(server, {"text": golden["texts"][0], "sampling_params": GREEDY}).json()
    assert out["text"] == golden["greedy_text"][0]


def test_abort_request(server):
    assert requests.post(server.url + "/abort_request", json={"rid": "no-such-request"}).status_code == 200


def test_metrics(server, golden):
    generate(server, {"text": golden["texts"][0], "sampling_params": GREEDY})
    r = requests.get(server.url + "/metrics")
    assert r.status_code == 200
    text = r.text
    for name in ["sglang:num_running_reqs", "sglang:num_queue_reqs", "sglang:prompt_tokens_total",
                 "sglang:generation_tokens_total", "sglang:cache_hit_rate", "sglang:token_usage",
                 "sglang:time_to_first_token_seconds_bucket", "sglang:inter_token_latency_seconds_bucket"]:
        assert name in text, name


def running_and_used(server):
    state = requests.get(server.url + "/get_server_info").json()["internal_states"][0]
    return state["num_running_reqs"], state["num_used_tokens"]


def test_disconnect_mid_stream_frees_pages(server, golden):
    body = {"text": golden["texts"][3], "stream": True,
            "sampling_params": {"max_new_tokens": 3000, "ignore_eos": True, "temperature": 0}}
    r = generate(server, body, stream=True)
    lines = r.iter_lines()
    seen = 0
    for line in lines:
        if line.startswith(b"data: "):
            seen += 1
            if seen == 3:
                break
    running, used = running_and_used(server)
    assert running == 1 and used > 0
    r.close()  # the client goes away
    deadline = time.time() + 20
    while time.time() < deadline and running_and_used(server) != (0, 0):
        time.sleep(0.1)
    assert running_and_used(server) == (0, 0)


def test_stop_regex_ends_generation_on_a_match(server, golden):
    # The greedy golden text is known: stop on a regex that matches inside it.
    full = golden["greedy_text"][0]
    words = [w for w in full.split() if w.isalpha()]
    assert words, full
    pattern = "\\b" + words[0][:3]  # the start of the first word of letters
    r = generate(server, {"text": golden["texts"][0],
                          "sampling_params": {**GREEDY, "stop_regex": [pattern, "zzzz+"]}})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["meta_info"]["finish_reason"] == {"type": "stop", "matched": pattern}, out
    assert out["meta_info"]["completion_tokens"] < 16
    assert full.startswith(out["text"]) and words[0][:3] in out["text"], (out["text"], full)
    r = generate(server, {"text": "x", "sampling_params": {"stop_regex": "(unclosed"}})
    assert r.status_code == 400 and "stop_regex" in r.text, r.text


def test_unsupported_request_fields_are_400(server):
    cases = [({"lora_path": "adapter"}, "lora_path"), ({"image_data": "img.png"}, "image_data"),
             ({"return_hidden_states": True}, "return_hidden_states"),
             ({"sampling_params": {"structural_tag": "{}"}}, "structural_tag")]
    for extra, field in cases:
        r = generate(server, {"text": "x", **extra})
        assert r.status_code == 400, (extra, r.text)
        assert field in r.text, (extra, r.text)
    # Defaults a client may send are fine.
    r = generate(server, {"text": "x", "lora_path": None, "return_hidden_states": False,
                          "sampling_params": {"max_new_tokens": 1}})
    assert r.status_code == 200, r.text
