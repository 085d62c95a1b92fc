"""Tool calling and reasoning separation on /v1/chat/completions.

The golden model's weights are random, so the tests make its output deterministic in shape:
tool_choice "required" / a named function constrain decoding with a JSON schema built from the
tools (whatever the model picks must be valid calls), and for the --tool-call-parser /
--reasoning-parser server the output is forced with an exact `regex` so that the parsers see a known
text."""
import json
import re

import jsonschema
import openai
import pytest
import requests

from conftest import MODEL_NAME, Server, sse_events
from openapi_shapes import check_named

WEATHER = {"type": "object",
           "properties": {"city": {"type": "string", "enum": ["Paris", "Oslo", "Lima"]},
                          "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                          "note": {"type": "string", "maxLength": 6}},
           "required": ["city", "unit"]}
ALARM = {"type": "object",
         "properties": {"label": {"$ref": "#/$defs/label"}, "loud": {"type": "boolean"}},
         "required": ["label", "loud"],
         "$defs": {"label": {"type": "string", "enum": ["wake", "tea"]}}}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                                            "parameters": WEATHER}},
         {"type": "function", "function": {"name": "set_alarm", "parameters": ALARM}}]
SCHEMAS = {"get_weather": WEATHER, "set_alarm": ALARM}
MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
CALL_ID = re.compile(r"call_[0-9a-f]{24}")


def chat(server, **body):
    return requests.post(server.url + "/v1/chat/completions",
                         json={"model": MODEL_NAME, "messages": MESSAGES, **body})


def check_calls(calls, names=SCHEMAS):
    """Each call is well formed, names a tool, and its arguments match that tool's schema."""
    assert calls, "no tool calls"
    for i, c in enumerate(calls):
        assert CALL_ID.fullmatch(c["id"]), c
        assert c["type"] == "function" and c["index"] == i, c
        assert c["function"]["name"] in names, c
        jsonschema.validate(json.loads(c["function"]["arguments"]), names[c["function"]["name"]])


def stream_message(response):
    """(reasoning, content, calls by index, finish_reason, chunks) of a chat SSE response. A
    call's first delta has its id, type and name; the arguments arrive in pieces (accumulated
    here as the openai client does)."""
    events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    reasoning, content, calls, finish = "", "", {}, None
    for chunk in chunks:
        assert check_named(chunk, "CreateChatCompletionStreamResponse") == [], chunk
        for choice in chunk["choices"]:
            delta = choice["delta"]
            reasoning += delta.get("reasoning_content") or ""
            content += delta.get("content") or ""
            for tc in delta.get("tool_calls") or []:
                if tc["index"] not in calls:
                    assert CALL_ID.fullmatch(tc["id"]) and tc["function"]["name"], tc
                    calls[tc["index"]] = json.loads(json.dumps(tc))
                else:
                    assert "id" not in tc and "name" not in tc["function"], tc
                    calls[tc["index"]]["function"]["arguments"] += tc["function"]["arguments"]
            if choice["finish_reason"]:
                finish = choice["finish_reason"]
    return reasoning, content, [calls[i] for i in sorted(calls)], finish, chunks


# ---- tool_choice required / named: constrained decoding, no parser needed ----

@pytest.mark.parametrize("seed", range(3))
def test_required_gives_valid_calls(server, seed):
    r = chat(server, tools=TOOLS, tool_choice="required", parallel_tool_calls=False,
             max_tokens=200, temperature=1.0, seed=seed)
    assert r.status_code == 200, r.text
    body = r.json()
    assert check_named(body, "CreateChatCompletionResponse") == []
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls", body
    assert choice["matched_stop"] is None
    assert choice["message"]["content"] == ""
    assert len(choice["message"]["tool_calls"]) == 1
    check_calls(choice["message"]["tool_calls"])


def test_required_parallel_calls(server):
    """Without parallel_tool_calls=false the array may hold several calls, each valid."""
    finished = 0
    for seed in range(4):
        r = chat(server, tools=TOOLS, tool_choice="required", max_tokens=400, temperature=1.0,
                 seed=seed)
        choice = r.json()["choices"][0]
        assert choice["message"]["content"] == ""  # never the raw JSON
        if choice["finish_reason"] == "length":  # a random model may keep adding calls
            continue
        finished += 1
        assert choice["finish_reason"] == "tool_calls"
        check_calls(choice["message"]["tool_calls"])
    assert finished > 0


@pytest.mark.parametrize("max_tokens", [12, 40, 80, 160])
def test_required_parallel_calls_cut_by_max_tokens(server, max_tokens):
    """Issue 11: streaming, tool_choice required, parallel calls and a max_tokens that cuts the
    list: every call completed before the cut arrives as a tool call (never as content), the
    cut one may have sent part of its arguments, and finish_reason is length. The same request
    without streaming (same seed, same tokens) gives the complete calls as tool_calls."""
    body = dict(tools=TOOLS, tool_choice="required", max_tokens=max_tokens, temperature=1.0,
                seed=1)
    full = chat(server, **body).json()
    choice = full["choices"][0]
    r = chat(server, **body, stream=True, stream_options={"include_usage": True})
    assert r.status_code == 200, r.text
    reasoning, content, calls, finish, chunks = stream_message(r)
    assert content == "" and reasoning == ""
    assert finish == choice["finish_reason"]
    assert chunks[-1]["usage"]["completion_tokens"] == full["usage"]["completion_tokens"]
    complete = choice["message"].get("tool_calls") or []
    if complete:
        check_calls(complete)
    assert choice["message"]["content"] == ""
    if finish == "length":
        assert full["usage"]["completion_tokens"] == max_tokens
        # The complete calls stream whole; a last, cut one may follow with partial arguments.
        assert len(calls) in (len(complete), len(complete) + 1)
    else:
        assert finish == "tool_calls" and len(calls) == len(complete)
    for streamed, whole in zip(calls, complete):
        assert streamed["function"]["name"] == whole["function"]["name"]
        assert json.loads(streamed["function"]["arguments"]) == \
            json.loads(whole["function"]["arguments"])
    # The openai client accumulates the same calls.
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)
    stream = client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES, stream=True,
                                            **body)
    names, args, text, finish = {}, {}, "", None
    for chunk in stream:
        for c in chunk.choices:
            text += c.delta.content or ""
            for tc in c.delta.tool_calls or []:
                names[tc.index] = (names.get(tc.index) or "") + (tc.function.name or "")
                args[tc.index] = args.get(tc.index, "") + (tc.function.arguments or "")
            finish = c.finish_reason or finish
    assert text == "" and finish == choice["finish_reason"]
    for i, whole in enumerate(complete):
        assert names[i] == whole["function"]["name"]
        jsonschema.validate(json.loads(args[i]), SCHEMAS[names[i]])


def test_some_cut_leaves_complete_calls(server):
    """The truncated case is really exercised: some seed's call list is cut after a complete
    call (so that the test above is not only about lists that finished)."""
    for seed in range(6):
        for max_tokens in (40, 80):
            choice = chat(server, tools=TOOLS, tool_choice="required", max_tokens=max_tokens,
                          temperature=1.0, seed=seed).json()["choices"][0]
            if choice["finish_reason"] == "length" and choice["message"].get("tool_calls"):
                check_calls(choice["message"]["tool_calls"])
                assert choice["message"]["content"] == ""
                return
    pytest.fail("no max_tokens cut the call list after a complete call")


def test_named_tool_choice_through_the_openai_client(server):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)
    for seed in range(2):
        resp = client.chat.completions.create(
            model=MODEL_NAME, messages=MESSAGES, tools=TOOLS, max_tokens=200, temperature=1.0,
            seed=seed, tool_choice={"type": "function", "function": {"name": "set_alarm"}})
        choice = resp.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert choice.message.content == ""
        assert len(choice.message.tool_calls) == 1
        call = choice.message.tool_calls[0]
        assert call.type == "function" and call.function.name == "set_alarm"
        assert CALL_ID.fullmatch(call.id)
        jsonschema.validate(json.loads(call.function.arguments), ALARM)
    resp = client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES, tools=TOOLS,
                                          tool_choice="required", parallel_tool_calls=False,
                                          max_tokens=200, temperature=0)
    assert resp.choices[0].finish_reason == "tool_calls"
    check_calls([c.model_dump() | {"index": i}
                 for i, c in enumerate(resp.choices[0].message.tool_calls)])


@pytest.mark.parametrize("tool_choice", ["required", {"type": "function",
                                                      "function": {"name": "get_weather"}}])
def test_forced_calls_stream(server, tool_choice):
    r = chat(server, tools=TOOLS, tool_choice=tool_choice, parallel_tool_calls=False,
             max_tokens=200, temperature=0.7, seed=5, stream=True)
    assert r.status_code == 200, r.text
    reasoning, content, calls, finish, chunks = stream_message(r)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert finish == "tool_calls"
    assert reasoning == "" and content == ""
    check_calls(calls)
    if isinstance(tool_choice, dict):
        assert [c["function"]["name"] for c in calls] == ["get_weather"]
    # The same through the openai client, accumulating deltas as its users do.
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)
    stream = client.chat.completions.create(
        model=MODEL_NAME, messages=MESSAGES, tools=TOOLS, tool_choice=tool_choice,
        parallel_tool_calls=False, max_tokens=200, temperature=0.7, seed=5, stream=True)
    names, args, finish = {}, {}, None
    for chunk in stream:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                names[tc.index] = (names.get(tc.index) or "") + (tc.function.name or "")
                args[tc.index] = args.get(tc.index, "") + (tc.function.arguments or "")
            finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    assert [names[i] for i in sorted(names)] == [c["function"]["name"] for c in calls]
    for i, name in names.items():
        jsonschema.validate(json.loads(args[i]), SCHEMAS[name])


def test_validation_errors(server):
    cases = [
        ({"tool_choice": "required"}, "Tools cannot be empty if tool choice is set to required."),
        ({"tools": [], "tool_choice": "required"},
         "Tools cannot be empty if tool choice is set to required."),
        ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}},
         "Tool 'nope' not found in tools list."),
        ({"tools": TOOLS, "tool_choice": "sometimes"}, "tool_choice must be"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": 3}}]},
         "must be a JSON schema object"),
        ({"tools": [{"type": "function"}]}, "each tool must be"),
    ]
    for body, message in cases:
        r = chat(server, **body)
        assert r.status_code == 400, (body, r.text)
        err = r.json()["error"]
        assert message in err["message"], (body, err)
        assert err["code"] == 400 and err["param"] in ("tools", "tool_choice")
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)
    with pytest.raises(openai.BadRequestError, match="not found in tools list"):
        client.chat.completions.create(
            model=MODEL_NAME, messages=MESSAGES, tools=TOOLS,
            tool_choice={"type": "function", "function": {"name": "missing"}})
    # A tool schema the grammar cannot compile is a 400 too.
    r = chat(server, tools=[{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "frob"}}}}}],
        tool_choice="required")
    assert r.status_code == 400, r.text


def test_tool_choice_none_does_not_offer_tools(server):
    plain = chat(server, max_tokens=4, temperature=0, ignore_eos=True).json()
    none = chat(server, tools=TOOLS, tool_choice="none", max_tokens=4, temperature=0,
                ignore_eos=True).json()
    offered = chat(server, tools=TOOLS, max_tokens=4, temperature=0, ignore_eos=True).json()
    assert none["usage"]["prompt_tokens"] == plain["usage"]["prompt_tokens"]
    assert offered["usage"]["prompt_tokens"] > plain["usage"]["prompt_tokens"]
    assert none["choices"][0]["message"]["content"] == plain["choices"][0]["message"]["content"]
    assert "tool_calls" not in none["choices"][0]["message"]
    assert none["choices"][0]["finish_reason"] == "length"


def test_own_constraint_wins_over_the_tool_constraint(server):
    r = chat(server, tools=TOOLS, tool_choice="required", max_tokens=20, temperature=0,
             regex="(yes|no)")
    assert r.status_code == 200, r.text
    msg = r.json()["choices"][0]["message"]
    assert msg["content"] in ("yes", "no")
    assert "tool_calls" not in msg


# ---- --tool-call-parser qwen25 --reasoning-parser qwen3 ----

@pytest.fixture(scope="module")
def parser_server():
    s = Server("--tool-call-parser", "qwen25", "--reasoning-parser", "qwen3")
    yield s
    s.stop()


F_TOOL = [{"type": "function", "function": {"name": "f", "parameters": {
    "type": "object", "properties": {"a": {"type": "integer"}}}}}]


def forced(text):
    """A regex matching exactly `text`."""
    return re.sub(r"([{}\[\]().*+?|\\^$])", r"\\\1", text)


THINK_CALL = '<think>r</think>Hi<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>'


def test_parser_server_separates_reasoning_and_calls(parser_server):
    r = chat(parser_server, tools=F_TOOL, regex=forced(THINK_CALL), max_tokens=200, temperature=0)
    assert r.status_code == 200, r.text
    body = r.json()
    assert check_named(body, "CreateChatCompletionResponse") == []
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["matched_stop"] is None
    msg = choice["message"]
    assert msg["reasoning_content"] == "r"
    assert msg["content"] == "Hi"
    assert len(msg["tool_calls"]) == 1
    call = msg["tool_calls"][0]
    assert CALL_ID.fullmatch(call["id"]) and call["index"] == 0 and call["type"] == "function"
    assert call["function"]["name"] == "f"
    assert json.loads(call["function"]["arguments"]) == {"a": 1}
    # Through the openai client (reasoning_content is an extra field there).
    client = openai.OpenAI(base_url=parser_server.url + "/v1", api_key="none", max_retries=0)
    resp = client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES, tools=F_TOOL,
                                          max_tokens=200, temperature=0,
                                          extra_body={"regex": forced(THINK_CALL)})
    assert resp.choices[0].finish_reason == "tool_calls"
    assert resp.choices[0].message.content == "Hi"
    assert resp.choices[0].message.reasoning_content == "r"
    assert resp.choices[0].message.tool_calls[0].function.name == "f"
    assert json.loads(resp.choices[0].message.tool_calls[0].function.arguments) == {"a": 1}


def test_parser_server_stream(parser_server):
    # Whitespace around a call is dropped: " then" after the first call becomes "then".
    two = THINK_CALL + ' then<tool_call>\n{"name": "f", "arguments": {"a": 22}}\n</tool_call>'
    r = chat(parser_server, tools=F_TOOL, regex=forced(two), max_tokens=300, temperature=0,
             stream=True, stream_options={"include_usage": True})
    assert r.status_code == 200, r.text
    reasoning, content, calls, finish, chunks = stream_message(r)
    assert reasoning == "r"
    assert content == "Hithen"
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [{"a": 1}, {"a": 22}]
    assert [c["index"] for c in calls] == [0, 1]
    assert all(CALL_ID.fullmatch(c["id"]) for c in calls)
    assert finish == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    # The openai client accumulates the same message.
    client = openai.OpenAI(base_url=parser_server.url + "/v1", api_key="none", max_retries=0)
    stream = client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES, tools=F_TOOL,
                                            max_tokens=300, temperature=0, stream=True,
                                            extra_body={"regex": forced(two)})
    text, names = "", []
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            names += [tc.function.name for tc in choice.delta.tool_calls or [] if tc.function.name]
    assert text == "Hithen" and names == ["f", "f"]


def test_parser_server_leaves_other_text_alone(parser_server):
    # A call to a function the request does not offer is dropped (and logged).
    unknown = '<think>r</think>Hi<tool_call>\n{"name": "g", "arguments": {}}\n</tool_call>'
    msg = chat(parser_server, tools=F_TOOL, regex=forced(unknown), max_tokens=200,
               temperature=0).json()["choices"][0]
    assert msg["finish_reason"] == "stop"
    assert msg["message"]["content"] == "Hi" and "tool_calls" not in msg["message"]
    assert "dropped a tool call to 'g'" in parser_server.read_log()
    # A malformed block stays in the content.
    bad = "Hi<tool_call>\n{oops}\n</tool_call>"
    msg = chat(parser_server, tools=F_TOOL, regex=forced(bad), max_tokens=200,
               temperature=0).json()["choices"][0]
    assert msg["finish_reason"] == "stop"
    assert msg["message"]["content"] == bad and msg["message"]["reasoning_content"] is None
    # tool_choice none: no parsing; without tools: none either.
    for extra in ({"tool_choice": "none"}, {}):
        body = {"tools": F_TOOL, **extra} if extra else {}
        msg = chat(parser_server, regex=forced(THINK_CALL), max_tokens=200, temperature=0,
                   **body).json()["choices"][0]
        assert msg["finish_reason"] == "stop"
        assert msg["message"]["reasoning_content"] == "r"
        assert msg["message"]["content"] == THINK_CALL[len("<think>r</think>"):]
    # separate_reasoning=false and enable_thinking=false keep the think block in the content.
    for extra in ({"separate_reasoning": False},
                  {"chat_template_kwargs": {"enable_thinking": False}}):
        msg = chat(parser_server, tools=F_TOOL, regex=forced(THINK_CALL), max_tokens=200,
                   temperature=0, **extra).json()["choices"][0]
        assert msg["finish_reason"] == "tool_calls"
        assert msg["message"]["reasoning_content"] is None
        assert msg["message"]["content"] == "<think>r</think>Hi"
