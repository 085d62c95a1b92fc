"""The official `openai` Python client against `sable serve`, used as its users use it.

Completions (stream, n, logprobs, echo, stop, batch prompts), chat (stream with usage, n, logprobs,
seed, json_schema with properties in any order and refusals by name, beta.chat.completions.parse,
tools required / named / auto, streaming tool calls with a cut call list), embeddings, models, and every error mapped to the client's exception class.
The golden qwen2_tok model has random weights, so the assertions check protocol and constraints
(schema validity, regex fullmatch, token counts through usage, exception types), never content.
"""
import json
import re
import typing

import jsonschema
import openai
import pydantic
import pytest

from conftest import MODEL_NAME, Server

PROMPT = "The capital city of France is"
MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
# Greedy, always max_tokens long, and ASCII (so that per-token texts join to the text exactly).
GREEDY = {"temperature": 0, "extra_body": {"ignore_eos": True, "regex": "[a-z ]+"}}


def client_of(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def client(server):
    return client_of(server)


# ---- completions ----

def test_completion_stream_matches_the_whole_answer(client):
    whole = client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=8, **GREEDY)
    assert whole.usage.completion_tokens == 8 and whole.choices[0].finish_reason == "length"
    pieces, finish, usage = [], None, None
    for chunk in client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=8,
                                           stream=True, stream_options={"include_usage": True},
                                           **GREEDY):
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            pieces.append(c.text)
            finish = c.finish_reason or finish
    assert "".join(pieces) == whole.choices[0].text
    assert finish == "length"
    assert usage.completion_tokens == 8 and usage.prompt_tokens == whole.usage.prompt_tokens


def test_completion_n_and_batch_prompts(client):
    r = client.completions.create(model=MODEL_NAME, prompt=[PROMPT, "Hello"], n=2, max_tokens=3,
                                  temperature=1.0, seed=3, extra_body={"ignore_eos": True})
    assert [c.index for c in r.choices] == [0, 1, 2, 3]
    assert r.usage.completion_tokens == 4 * 3
    one = client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=1)
    two = client.completions.create(model=MODEL_NAME, prompt="Hello", max_tokens=1)
    # n samples of a prompt share its prompt tokens.
    assert r.usage.prompt_tokens == one.usage.prompt_tokens + two.usage.prompt_tokens


def test_completion_logprobs(client):
    r = client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=5, logprobs=3,
                                  **GREEDY)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 5
    assert "".join(lp.tokens) == r.choices[0].text
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(5)]
    for chosen, top in zip(lp.token_logprobs, lp.top_logprobs):
        assert chosen <= 0 and len(top) == 3
        assert chosen <= max(top.values()) + 1e-4  # greedy picks the best one


@pytest.mark.parametrize("max_tokens", [4, 0])
def test_completion_echo_with_logprobs_covers_the_prompt(client, max_tokens):
    r = client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=max_tokens, echo=True,
                                  logprobs=1, **GREEDY)
    choice, usage = r.choices[0], r.usage
    assert choice.text.startswith(PROMPT)
    lp = choice.logprobs
    assert len(lp.tokens) == usage.prompt_tokens + usage.completion_tokens
    assert "".join(lp.tokens) == choice.text
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(len(lp.tokens))]
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    assert all(x <= 0 for x in lp.token_logprobs[1:])
    # Streaming: the first chunk is the prompt with its logprobs.
    chunks = list(client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=max_tokens,
                                            echo=True, logprobs=1, stream=True, **GREEDY))
    first = chunks[0].choices[0]
    assert first.text == PROMPT
    assert len(first.logprobs.tokens) == usage.prompt_tokens
    assert first.logprobs.token_logprobs[0] is None
    assert "".join(c.choices[0].text for c in chunks if c.choices) == choice.text


def test_completion_stop(client):
    # Whatever the model says, cutting it at a piece of its own greedy answer must end there.
    full = client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=16, **GREEDY)
    text = full.choices[0].text
    stop = text[len(text) // 2:len(text) // 2 + 2]
    assert len(stop) == 2
    r = client.completions.create(model=MODEL_NAME, prompt=PROMPT, max_tokens=16, stop=[stop],
                                  **GREEDY)
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].text == text[:text.index(stop)]


# ---- chat ----

def test_chat_stream_with_usage(client):
    whole = client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES, max_tokens=6,
                                           **GREEDY)
    stream = client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES, max_tokens=6,
                                            stream=True, stream_options={"include_usage": True},
                                            **GREEDY)
    content, usage, finish = "", None, None
    for chunk in stream:
        if chunk.usage:
            assert chunk.choices == []
            usage = chunk.usage
        for c in chunk.choices:
            content += c.delta.content or ""
            finish = c.finish_reason or finish
    assert content == whole.choices[0].message.content
    assert finish == "length"
    assert usage.completion_tokens == 6 == whole.usage.completion_tokens
    assert usage.prompt_tokens == whole.usage.prompt_tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_chat_n_logprobs_and_seed(client):
    args = dict(model=MODEL_NAME, messages=MESSAGES, max_tokens=4, n=3, temperature=1.0, seed=11,
                logprobs=True, top_logprobs=2, extra_body={"ignore_eos": True, "regex": "[a-z ]+"})
    a = client.chat.completions.create(**args)
    b = client.chat.completions.create(**args)
    assert [c.index for c in a.choices] == [0, 1, 2]
    assert a.usage.completion_tokens == 3 * 4
    for ca, cb in zip(a.choices, b.choices):
        assert ca.message.content == cb.message.content  # same seed, same samples
        content = ca.logprobs.content
        assert len(content) == 4
        assert b"".join(bytes(t.bytes) for t in content) == ca.message.content.encode()
        for t in content:
            assert t.logprob <= 0 and len(t.top_logprobs) == 2


class Weather(pydantic.BaseModel):
    # Bounded fields: a model with random weights would otherwise write an endless string.
    city: typing.Literal["Paris", "Oslo"]
    note: str = pydantic.Field(max_length=6)
    rainy: bool


def test_chat_json_schema_is_valid_json(client):
    schema = {"type": "object",
              "properties": {"city": {"type": "string", "enum": ["Paris", "Oslo"]},
                             "ok": {"type": "boolean"},
                             "note": {"type": "string", "maxLength": 4}},
              "required": ["city", "ok", "note"], "additionalProperties": False}
    for seed in range(2):
        r = client.chat.completions.create(
            model=MODEL_NAME, messages=MESSAGES, max_tokens=100, temperature=1.0, seed=seed,
            response_format={"type": "json_schema",
                             "json_schema": {"name": "w", "schema": schema, "strict": True}})
        assert r.choices[0].finish_reason == "stop", r
        jsonschema.validate(json.loads(r.choices[0].message.content), schema)


def test_chat_json_schema_ranges_formats_and_counts(client):
    schema = {"type": "object",
              "properties": {"age": {"type": "integer", "minimum": 0, "maximum": 150},
                             "level": {"type": "integer", "exclusiveMinimum": 2, "maximum": 5},
                             "code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"},
                             "day": {"type": "string", "format": "date"},
                             "tags": {"type": "array", "items": {"type": "string", "maxLength": 3},
                                      "minItems": 1, "maxItems": 2}},
              "required": ["age", "level", "code", "day", "tags"], "additionalProperties": False}
    checker = jsonschema.Draft202012Validator(schema,
                                              format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    for seed in range(3):
        r = client.chat.completions.create(
            model=MODEL_NAME, messages=MESSAGES, max_tokens=150, temperature=1.0, seed=seed,
            response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": schema}})
        assert r.choices[0].finish_reason == "stop", r
        checker.validate(json.loads(r.choices[0].message.content))


def _unique_keys(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), keys  # each property at most once
    return dict(pairs)


def test_chat_json_schema_properties_in_any_order(client):
    # Every order of the declared properties is allowed (each at most once, required ones always);
    # sampled at temperature 1 from random weights, some outputs leave the declared order.
    schema = {"type": "object",
              "properties": {"alpha": {"type": "boolean"}, "beta": {"enum": [1, 2]},
                             "gamma": {"type": "null"}, "delta": {"type": "boolean"}},
              "required": ["alpha", "gamma"], "additionalProperties": False}
    declared = list(schema["properties"])
    orders = set()
    for seed in range(8):
        r = client.chat.completions.create(
            model=MODEL_NAME, messages=MESSAGES, max_tokens=80, temperature=1.0, seed=seed,
            response_format={"type": "json_schema", "json_schema": {"name": "o", "schema": schema}})
        assert r.choices[0].finish_reason == "stop", r
        value = json.loads(r.choices[0].message.content, object_pairs_hook=_unique_keys)
        jsonschema.validate(value, schema)
        orders.add(tuple(value))
    assert any(list(o) != [k for k in declared if k in o] for o in orders), orders
    # Declared order on request ("x-sable"), as xgrammar and llguidance generate.
    ordered = dict(schema, **{"x-sable": {"property_order": "declared"}})
    for seed in range(3):
        r = client.chat.completions.create(
            model=MODEL_NAME, messages=MESSAGES, max_tokens=80, temperature=1.0, seed=seed,
            response_format={"type": "json_schema", "json_schema": {"name": "o", "schema": ordered}})
        keys = list(json.loads(r.choices[0].message.content))
        assert keys == [k for k in declared if k in keys], keys


def test_chat_json_schema_refusals_name_what_cannot_be_enforced(client):
    def create(schema):
        return client.chat.completions.create(
            model=MODEL_NAME, messages=MESSAGES, max_tokens=8,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    # oneOf whose branches may overlap (a value valid under both must be rejected) where a branch
    # is written as a subset (a format's automaton).
    with pytest.raises(openai.BadRequestError) as e:
        create({"oneOf": [{"type": "string", "format": "email"}, {"type": "string", "maxLength": 5}]})
    assert "oneOf branches 0 and 1" in e.value.message
    # Too many properties for any order: declared order by default; "any" insists and is refused,
    # the message naming the object and the option.
    many = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(13)}}
    with pytest.raises(openai.BadRequestError) as e:
        create({"type": "object", "properties": {"inner": many},
                "x-sable": {"property_order": "any"}})
    assert "/properties/inner/properties" in e.value.message
    assert "property_order" in e.value.message
    r = create({"type": "object", "properties": {"inner": many}})
    assert r.choices[0].message.content is not None


def test_beta_parse_with_a_pydantic_model(client):
    parse = getattr(client.chat.completions, "parse", None) or client.beta.chat.completions.parse
    r = parse(model=MODEL_NAME, messages=MESSAGES, max_tokens=100, temperature=0,
              response_format=Weather)
    message = r.choices[0].message
    assert isinstance(message.parsed, Weather)
    assert Weather.model_validate_json(message.content) == message.parsed


# ---- tools ----

WEATHER = {"type": "object",
           "properties": {"city": {"type": "string", "enum": ["Paris", "Oslo", "Lima"]},
                          "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
           "required": ["city", "unit"]}
ALARM = {"type": "object", "properties": {"loud": {"type": "boolean"}}, "required": ["loud"]}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}},
         {"type": "function", "function": {"name": "set_alarm", "parameters": ALARM}}]
SCHEMAS = {"get_weather": WEATHER, "set_alarm": ALARM}


def check_call(call, names=SCHEMAS):
    assert call.type == "function" and re.fullmatch(r"call_[0-9a-f]{24}", call.id)
    assert call.function.name in names
    jsonschema.validate(json.loads(call.function.arguments), names[call.function.name])


@pytest.mark.parametrize("tool_choice", ["required",
                                         {"type": "function", "function": {"name": "set_alarm"}}])
def test_tools_required_and_named(client, tool_choice):
    r = client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES, tools=TOOLS,
                                       tool_choice=tool_choice, parallel_tool_calls=False,
                                       max_tokens=200, temperature=1.0, seed=4)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert len(choice.message.tool_calls) == 1
    check_call(choice.message.tool_calls[0])
    if isinstance(tool_choice, dict):
        assert choice.message.tool_calls[0].function.name == "set_alarm"


@pytest.fixture(scope="module")
def parser_server():
    s = Server("--tool-call-parser", "qwen25")
    yield s
    s.stop()


def forced(text):
    """A regex matching exactly `text` (to make the random model write a known tool call)."""
    return re.sub(r"([{}\[\]().*+?|\\^$])", r"\\\1", text)


def call_text(city):
    return f'<tool_call>\n{{"name": "get_weather", "arguments": {{"city": "{city}", "unit": "celsius"}}}}\n</tool_call>'


def test_tools_auto_parses_calls_and_leaves_text(parser_server):
    client = client_of(parser_server)
    r = client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES, tools=TOOLS,
                                       tool_choice="auto", max_tokens=200, temperature=0,
                                       extra_body={"regex": forced(call_text("Oslo"))})
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [c.function.name for c in choice.message.tool_calls] == ["get_weather"]
    check_call(choice.message.tool_calls[0])
    r = client.chat.completions.create(model=MODEL_NAME, messages=MESSAGES, tools=TOOLS,
                                       max_tokens=20, temperature=0,
                                       extra_body={"regex": "(sunny|rainy) today"})
    assert r.choices[0].message.tool_calls is None
    assert re.fullmatch("(sunny|rainy) today", r.choices[0].message.content)


def stream_calls(stream):
    """(calls by index as {name, arguments}, content, finish_reason), accumulated as clients do."""
    calls, content, finish = {}, "", None
    for chunk in stream:
        for c in chunk.choices:
            content += c.delta.content or ""
            for tc in c.delta.tool_calls or []:
                call = calls.setdefault(tc.index, {"name": "", "arguments": ""})
                call["name"] += tc.function.name or ""
                call["arguments"] += tc.function.arguments or ""
            finish = c.finish_reason or finish
    return [calls[i] for i in sorted(calls)], content, finish


def test_streaming_tool_calls(parser_server):
    client = client_of(parser_server)
    two = call_text("Oslo") + call_text("Lima")
    calls, content, finish = stream_calls(client.chat.completions.create(
        model=MODEL_NAME, messages=MESSAGES, tools=TOOLS, max_tokens=300, temperature=0,
        stream=True, extra_body={"regex": forced(two)}))
    assert finish == "tool_calls" and content == ""
    assert [json.loads(c["arguments"])["city"] for c in calls] == ["Oslo", "Lima"]


def tokens_of(client, **request):
    """The token strings of a greedy answer (through chat logprobs)."""
    r = client.chat.completions.create(logprobs=True, temperature=0, **request)
    return [t.token for t in r.choices[0].logprobs.content]


def test_streaming_tool_calls_cut_by_max_tokens(parser_server):
    """Three calls, max_tokens ending inside the third: the two complete ones arrive as calls."""
    client = client_of(parser_server)
    three = call_text("Oslo") + call_text("Lima") + call_text("Paris")
    request = dict(model=MODEL_NAME, messages=MESSAGES, tools=TOOLS,
                   extra_body={"regex": forced(three)})
    tokens = tokens_of(client, max_tokens=300, **request)
    assert "".join(tokens).startswith(three)  # then the end-of-turn token
    two_end = len(call_text("Oslo") + call_text("Lima"))
    cut = next(n for n in range(len(tokens)) if len("".join(tokens[:n])) >= two_end) + 3
    calls, content, finish = stream_calls(client.chat.completions.create(
        max_tokens=cut, temperature=0, stream=True, **request))
    assert finish == "length"
    assert [json.loads(c["arguments"])["city"] for c in calls] == ["Oslo", "Lima"]
    assert "get_weather" not in content


def test_streaming_required_calls_cut_by_max_tokens(client):
    """tool_choice required, parallel calls: the calls completed before the cut are delivered."""
    request = dict(model=MODEL_NAME, messages=MESSAGES, tools=TOOLS, tool_choice="required")
    tokens = tokens_of(client, max_tokens=400, **request)
    text = "".join(tokens)
    first_end = json.JSONDecoder().raw_decode(text, text.index("{"))[1]
    cut = next(n for n in range(len(tokens) + 1) if len("".join(tokens[:n])) >= first_end)
    assert text[len("".join(tokens[:cut])):].strip() not in ("", "]"), "the list was not cut"
    calls, content, finish = stream_calls(client.chat.completions.create(
        max_tokens=cut, temperature=0, stream=True, **request))
    assert finish == "length"
    assert len(calls) >= 1
    first = json.JSONDecoder().raw_decode(text, text.index("{"))[0]
    assert calls[0]["name"] == first["name"]
    assert json.loads(calls[0]["arguments"]) == first["parameters"]
    assert content == ""


# ---- embeddings and models ----

@pytest.fixture(scope="module")
def emb_server():
    s = Server("--is-embedding")
    yield s
    s.stop()


def test_embeddings(emb_server):
    client = client_of(emb_server)
    r = client.embeddings.create(model=MODEL_NAME, input=["Hello", "The capital city"])
    assert [d.index for d in r.data] == [0, 1]
    assert all(len(d.embedding) == 32 for d in r.data)  # qwen2_tok hidden_size
    assert all(abs(sum(x * x for x in d.embedding) - 1) < 1e-4 for d in r.data)
    assert r.usage.prompt_tokens == r.usage.total_tokens > 0
    # The client's default encoding is base64: it decodes to the same floats.
    f = client.embeddings.create(model=MODEL_NAME, input="Hello", encoding_format="float")
    b = client.embeddings.create(model=MODEL_NAME, input="Hello")
    assert max(abs(x - y) for x, y in zip(f.data[0].embedding, b.data[0].embedding)) < 1e-6


def test_models_list_and_retrieve(client):
    assert [m.id for m in client.models.list()] == [MODEL_NAME]
    m = client.models.retrieve(MODEL_NAME)
    assert m.id == MODEL_NAME and m.object == "model"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-17")


# ---- errors, as the client raises them ----

def test_errors_map_to_the_client_exceptions(client, auth_server):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-17", messages=MESSAGES)
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL_NAME,
                                       messages=[{"role": "wizard", "content": "hi"}])
    assert "wizard" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model=MODEL_NAME, prompt=[9707] * 5000, max_tokens=1)
    assert e.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=MODEL_NAME, prompt=PROMPT, temperature=-1)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=auth_server.url + "/v1", api_key="wrong",
                      max_retries=0).models.list()
