"""Jump-forward through the real server: text a grammar forces is appended in one step. The
session server runs with it (the default); a second one runs with --disable-jump-forward. Both
must produce output that is valid for the grammar, the same text where the grammar leaves no
choice after the first forced character, fewer scheduler steps with the jump
(/server_info internal_states: forward_steps_total, jump_forward_tokens_total), and correct
streaming, usage counts, max_new_tokens, stop strings and log-probabilities (null for forced
tokens)."""
import json

import jsonschema
import pytest
import requests

from conftest import Server, sse_events
from test_constrained import SCHEMA as CONSTRAINED_SCHEMA

# test_constrained's schema, in declared order: the keys are forced text.
SCHEMA = {**CONSTRAINED_SCHEMA, "x-sable": {"property_order": "declared"}}
# Free letters first (the same in both modes: nothing was forced before them), then forced text.
FREE_THEN_FORCED = r"[a-z]{4} is the word of the day, said the quick brown fox\."


@pytest.fixture(scope="module")
def no_jump_server():
    s = Server("--disable-jump-forward")
    yield s
    s.stop()


def generate(server, params, text="The answer:", **extra):
    r = requests.post(server.url + "/generate",
                      json={"text": text, "sampling_params": params, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def counters(server):
    state = requests.get(server.url + "/server_info").json()["internal_states"][0]
    return state["forward_steps_total"], state["jump_forward_tokens_total"]


def run_counted(server, params, **extra):
    """One request alone on the server; returns it and the steps / jumped tokens it took."""
    steps0, jumped0 = counters(server)
    out = generate(server, params, **extra)
    steps1, jumped1 = counters(server)
    return out, steps1 - steps0, jumped1 - jumped0


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_schema_output_is_valid_with_and_without_jump(server, no_jump_server, temperature):
    params = {"json_schema": json.dumps(SCHEMA), "max_new_tokens": 160,
              "temperature": temperature}
    for seed in range(3):
        for s in (server, no_jump_server):
            out = generate(s, {**params, "sampling_seed": seed}, text=f"Item {seed}:")
            assert out["meta_info"]["finish_reason"]["type"] == "stop", out
            value = json.loads(out["text"])
            jsonschema.validate(value, SCHEMA)
            assert list(value) == ["name", "ok", "color", "tags"], value


def test_jump_saves_steps_and_counts_every_token(server, no_jump_server):
    params = {"json_schema": json.dumps(SCHEMA), "max_new_tokens": 160, "temperature": 0}
    jumped_out, jumped_steps, jumped_tokens = run_counted(server, params)
    plain_out, plain_steps, plain_tokens = run_counted(no_jump_server, params)
    # Without the jump: one step per output token (the prefill samples the first).
    assert plain_tokens == 0
    assert plain_steps == plain_out["meta_info"]["completion_tokens"]
    # With it: the forced keys and punctuation came without steps of their own.
    n = jumped_out["meta_info"]["completion_tokens"]
    assert jumped_tokens > 0
    assert jumped_steps + jumped_tokens == n, (jumped_steps, jumped_tokens, n)
    assert jumped_steps < plain_steps
    assert len(jumped_out["output_ids"]) == n
    for out in (jumped_out, plain_out):
        jsonschema.validate(json.loads(out["text"]), SCHEMA)


def test_greedy_text_is_identical_where_the_grammar_decides(server, no_jump_server):
    params = {"regex": FREE_THEN_FORCED, "max_new_tokens": 64, "temperature": 0}
    jumped, steps, tokens = run_counted(server, params)
    plain, plain_steps, _ = run_counted(no_jump_server, params)
    assert jumped["text"] == plain["text"]
    assert jumped["text"].endswith(" is the word of the day, said the quick brown fox.")
    assert tokens > 10 and steps < plain_steps
    for out in (jumped, plain):
        assert out["meta_info"]["finish_reason"]["type"] == "stop"


def test_stream_matches_the_whole_answer(server):
    params = {"json_schema": json.dumps(SCHEMA), "max_new_tokens": 160, "temperature": 0}
    whole = generate(server, params)
    r = requests.post(server.url + "/generate", stream=True,
                      json={"text": "The answer:", "sampling_params": params, "stream": True})
    events = sse_events(r)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    for a, b in zip(chunks, chunks[1:]):
        assert b["text"].startswith(a["text"])
    assert chunks[-1]["text"] == whole["text"]
    assert chunks[-1]["meta_info"]["completion_tokens"] == whole["meta_info"]["completion_tokens"]


def test_max_new_tokens_and_stop_strings_inside_forced_text(server, no_jump_server):
    for s in (server, no_jump_server):
        for max_new in (3, 6, 9):
            out = generate(s, {"regex": FREE_THEN_FORCED, "max_new_tokens": max_new,
                               "temperature": 0})
            meta = out["meta_info"]
            assert meta["completion_tokens"] == max_new, out
            assert meta["finish_reason"] == {"type": "length", "length": max_new}
        out = generate(s, {"regex": FREE_THEN_FORCED, "max_new_tokens": 64, "temperature": 0,
                           "stop": ["quick"]})
        assert out["meta_info"]["finish_reason"] == {"type": "stop", "matched": "quick"}, out
        assert out["text"].endswith(" is the word of the day, said the "), out["text"]


def test_logprob_requests_jump_alike_with_null_forced_logprobs(server):
    params = {"json_schema": json.dumps(SCHEMA), "max_new_tokens": 160, "temperature": 0}
    plain = generate(server, params)
    out, _, jumped = run_counted(server, params, return_logprob=True)
    meta = out["meta_info"]
    assert jumped > 0
    assert out["output_ids"] == plain["output_ids"]  # the same tokens with and without logprobs
    lps = meta["output_token_logprobs"]
    assert [lp[1] for lp in lps] == out["output_ids"]
    forced = [lp for lp in lps if lp[0] is None]
    assert len(forced) >= jumped
    assert all(lp[0] <= 0 for lp in lps if lp[0] is not None)
    assert lps[-1][0] is not None  # EOS was sampled
    jsonschema.validate(json.loads(out["text"]), SCHEMA)
