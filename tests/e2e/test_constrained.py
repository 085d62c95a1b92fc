"""Constrained decoding through the server: regex / json_schema / ebnf sampling params on
/generate and response_format on /v1/chat/completions. The golden model has random weights, so
whatever it says unconstrained is noise: every output below is what the grammar allowed, and it
must match exactly, end with EOS (finish_reason stop), and survive sampling at temperature 1."""
import json
import re

import jsonschema
import openai
import pytest
import requests

from conftest import MODEL_NAME, Server, sse_events


def generate(server, params, text="The answer:", **extra):
    r = requests.post(server.url + "/generate",
                      json={"text": text, "sampling_params": params, **extra})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_regex_choice_of_words(server, temperature):
    for seed in range(4):
        out = generate(server, {"regex": "(yes|no|maybe)", "max_new_tokens": 16,
                                "temperature": temperature, "sampling_seed": seed})
        assert out["text"] in ("yes", "no", "maybe"), out
        assert out["meta_info"]["finish_reason"]["type"] == "stop", out


def test_regex_phone_number_and_unicode(server):
    out = generate(server, {"regex": r"\(\d{3}\) \d{3}-\d{4}", "max_new_tokens": 40,
                            "temperature": 1.0, "sampling_seed": 7})
    assert re.fullmatch(r"\(\d{3}\) \d{3}-\d{4}", out["text"]), out["text"]
    out = generate(server, {"regex": "(héllo|日本語)!", "max_new_tokens": 16, "temperature": 1.0})
    assert out["text"] in ("héllo!", "日本語!"), out["text"]


SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 8},
        "ok": {"type": "boolean"},
        "color": {"enum": ["red", "green", "blue"]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "maxItems": 2},
    },
    "required": ["name", "ok", "color", "tags"],
    "additionalProperties": False,  # absent, further members could follow the declared ones
}


def _unique_keys(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), keys
    return dict(pairs)


def check_schema_output(text):
    value = json.loads(text, object_pairs_hook=_unique_keys)
    assert sorted(value) == ["color", "name", "ok", "tags"], value  # any order, each once
    assert isinstance(value["name"], str) and len(value["name"]) <= 8
    assert isinstance(value["ok"], bool)
    assert value["color"] in ("red", "green", "blue")
    assert isinstance(value["tags"], list) and len(value["tags"]) <= 2
    assert all(isinstance(t, str) and len(t) <= 3 for t in value["tags"])


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_json_schema_output_parses_and_conforms(server, temperature):
    for seed in range(3):
        out = generate(server, {"json_schema": json.dumps(SCHEMA), "max_new_tokens": 160,
                                "temperature": temperature, "sampling_seed": seed})
        assert out["meta_info"]["finish_reason"]["type"] == "stop", out
        check_schema_output(out["text"])


# Every output is validated with the `jsonschema` package (format checker on: ipv4, ipv6, uuid,
# date, date-time are checked by it), so a keyword the grammar ignored would show up here.
RICH_SCHEMA = {
    "type": "object",
    "properties": {
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "delta": {"type": "integer", "exclusiveMinimum": -20, "exclusiveMaximum": -3},
        "score": {"type": "number", "minimum": -1.5, "exclusiveMaximum": 2.25},
        "ip": {"type": "string", "format": "ipv4"},
        "ip6": {"type": "string", "format": "ipv6"},
        "id": {"type": "string", "format": "uuid"},
        "when": {"type": "string", "format": "date-time"},
        "code": {"type": "string", "pattern": "^[A-Z]{2}-\\d{3}$"},
        "nick": {"type": "string", "minLength": 2, "maxLength": 5},
        "kind": {"enum": ["a", 1, None, [1, 2]]},
        "tags": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 9},
                 "minItems": 1, "maxItems": 3},
        "pair": {"type": "array", "prefixItems": [{"type": "boolean"}, {"const": "x"}],
                 "items": False},
        "opt": {"allOf": [{"type": "integer"}, {"minimum": 10}, {"maximum": 12}]},
    },
    "required": ["age", "delta", "score", "ip", "ip6", "id", "when", "code", "nick", "kind",
                 "tags", "pair"],
    "additionalProperties": False,
    # 13 properties: too many to track in any order, so this schema asks for declared order.
    "x-sable": {"property_order": "declared"},
}


def test_json_schema_keywords_are_enforced(server):
    validator = jsonschema.Draft202012Validator(
        RICH_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    finished = 0
    for seed in range(4):
        out = generate(server, {"json_schema": json.dumps(RICH_SCHEMA), "max_new_tokens": 400,
                                "temperature": 1.0, "sampling_seed": seed})
        if out["meta_info"]["finish_reason"]["type"] != "stop":
            continue  # cut by max_new_tokens (a random model may ramble inside a string)
        finished += 1
        value = json.loads(out["text"])
        errors = [e.message for e in validator.iter_errors(value)]
        assert errors == [], (out["text"], errors)
    assert finished > 0


def test_unenforceable_keywords_are_400_naming_them(server):
    cases = [
        ({"type": "integer", "multipleOf": 3}, "multipleOf"),
        ({"type": "array", "contains": {"type": "integer"}}, "'contains'"),
        ({"type": "object", "patternProperties": {"^(?!a)": {"type": "integer"}}},
         "lookahead"),
        ({"type": "string", "format": "duration"}, "format 'duration' is not supported"),
        ({"type": "array", "uniqueItems": True}, "uniqueItems"),
        ({"type": "integer", "minimum": 3, "maximum": 2}, "no integer lies between"),
    ]
    for schema, needle in cases:
        r = requests.post(server.url + "/generate", json={
            "text": "x", "sampling_params": {"json_schema": json.dumps(schema)}})
        assert r.status_code == 400, (schema, r.text)
        assert needle in r.text, (schema, r.text)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)
    with pytest.raises(openai.BadRequestError, match="patternProperties"):
        client.chat.completions.create(
            model=MODEL_NAME, messages=[{"role": "user", "content": "x"}], max_tokens=8,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {
                "type": "object", "properties": {"ab": {"type": "string"}},
                "patternProperties": {"^(?!a)": {"type": "integer"}}}}})


def test_streaming_and_batch_with_mixed_constraints(server):
    r = requests.post(server.url + "/generate", stream=True,
                      json={"text": "Pick:", "stream": True,
                            "sampling_params": {"regex": "[a-c]{2,4}", "max_new_tokens": 16,
                                                "temperature": 1.0}})
    events = [e for e in sse_events(r) if e != "[DONE]"]
    assert re.fullmatch("[a-c]{2,4}", json.loads(events[-1])["text"]), events[-1]
    # A batch where one prompt is constrained and one is not, sharing a prefix.
    r = requests.post(server.url + "/generate", json={
        "text": ["Shared prefix, then", "Shared prefix, then"],
        "sampling_params": [{"regex": "[0-9]+", "max_new_tokens": 6, "temperature": 0},
                            {"max_new_tokens": 6, "temperature": 0}]})
    assert r.status_code == 200, r.text
    constrained, free = r.json()
    assert re.fullmatch("[0-9]+", constrained["text"]), constrained
    assert free["meta_info"]["completion_tokens"] == 6


def test_ebnf(server):
    grammar = 'root ::= "ok" | "fine" ws "then"\nws ::= " "'
    out = generate(server, {"ebnf": grammar, "max_new_tokens": 16, "temperature": 1.0})
    assert out["text"] in ("ok", "fine then"), out
    # Recursive rules are unrolled 4 levels: balanced parentheses around an x.
    for seed in range(3):
        out = generate(server, {"ebnf": 'root ::= "(" root ")" | "x"', "max_new_tokens": 16,
                                "temperature": 1.0, "sampling_seed": seed})
        m = re.fullmatch(r"(\(*)x(\)*)", out["text"])
        assert m and len(m.group(1)) == len(m.group(2)) <= 4, out


def test_openai_response_format(server):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="none")
    resp = client.chat.completions.create(
        model=MODEL_NAME, messages=[{"role": "user", "content": "Describe a thing as JSON."}],
        max_tokens=160, temperature=0.7,
        response_format={"type": "json_schema",
                         "json_schema": {"name": "thing", "schema": SCHEMA}})
    assert resp.choices[0].finish_reason == "stop"
    check_schema_output(resp.choices[0].message.content)
    resp = client.chat.completions.create(
        model=MODEL_NAME, messages=[{"role": "user", "content": "Any JSON object."}],
        max_tokens=200, temperature=0, response_format={"type": "json_object"})
    if resp.choices[0].finish_reason == "stop":  # a random model may nest deep; then it is cut
        assert isinstance(json.loads(resp.choices[0].message.content), dict)
    else:
        assert resp.choices[0].message.content.startswith("{")


def test_bad_specs_are_400_naming_the_field(server):
    cases = [
        ({"regex": "(?=a)b"}, "regex"),
        ({"regex": "(unclosed"}, "regex"),
        ({"json_schema": "{not json"}, "json_schema"),
        ({"ebnf": "root ::= item"}, "ebnf"),  # item is never defined
        ({"ebnf": "root ::= \"(\" root \")\""}, "matches no string"),  # recursion, no way out
        ({"regex": "a", "json_schema": "{}"}, "Only one of regex, json_schema, or ebnf"),
    ]
    for params, needle in cases:
        r = requests.post(server.url + "/generate", json={"text": "x", "sampling_params": params})
        assert r.status_code == 400, (params, r.text)
        assert needle in r.text, (params, r.text)
    r = requests.post(server.url + "/v1/chat/completions", json={
        "model": MODEL_NAME, "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}})
    assert r.status_code == 400, r.text
    assert "schema_ is required for json_schema response format request." in r.text


def test_grammar_backend_none_refuses_constraints():
    s = Server("--grammar-backend", "none")
    try:
        r = requests.post(s.url + "/generate",
                          json={"text": "x", "sampling_params": {"regex": "a+"}})
        assert r.status_code == 400, r.text
        assert "constrained decoding is off" in r.text
        r = requests.post(s.url + "/generate",
                          json={"text": "x", "sampling_params": {"max_new_tokens": 2}})
        assert r.status_code == 200, r.text
    finally:
        s.stop()
