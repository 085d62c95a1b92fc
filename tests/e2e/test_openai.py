"""OpenAI-compatible routes through the official openai client and raw requests; every response
and stream chunk is checked against spec/openai_openapi.yaml."""
import jinja2
import openai
import pytest
import requests

from conftest import MODEL_DIR, MODEL_NAME
from openapi_shapes import check_named

GREEDY = {"temperature": 0, "max_new_tokens": 16, "ignore_eos": True}


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def render_chat(messages):
    """The reference rendering of the model's chat template (jinja2, as transformers does)."""
    import json
    import os
    with open(os.path.join(MODEL_DIR, "tokenizer_config.json")) as f:
        source = json.load(f)["chat_template"]
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda x, **kw: json.dumps(x, **kw)
    return env.from_string(source).render(messages=messages, add_generation_prompt=True,
                                          bos_token="", eos_token="<|im_end|>")


def test_models(server, client):
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL_NAME]
    raw = requests.get(server.url + "/v1/models").json()
    assert check_named(raw, "ListModelsResponse") == []


@pytest.mark.parametrize("i", range(2))
def test_completion_golden(server, client, golden, i):
    c = client.completions.create(model=MODEL_NAME, prompt=golden["texts"][i], max_tokens=16,
                                  temperature=0, extra_body={"ignore_eos": True})
    assert c.choices[0].text == golden["greedy_text"][i]
    assert c.choices[0].finish_reason == "length"
    assert c.usage.prompt_tokens == len(golden["ids"][i])
    assert c.usage.completion_tokens == 16
    raw = requests.post(server.url + "/v1/completions",
                        json={"model": MODEL_NAME, "prompt": golden["texts"][i], "max_tokens": 16,
                              "temperature": 0, "ignore_eos": True}).json()
    assert check_named(raw, "CreateCompletionResponse") == []


def test_completion_stream_deltas_concatenate(server, client, golden):
    stream = client.completions.create(model=MODEL_NAME, prompt=golden["texts"][2], max_tokens=16,
                                       temperature=0, stream=True,
                                       stream_options={"include_usage": True},
                                       extra_body={"ignore_eos": True})
    chunks = list(stream)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == golden["greedy_text"][2]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 16
    # The spec has no chunk schema for completions: chunks follow CreateCompletionResponse, except
    # that finish_reason is null until the last one (as OpenAI streams it).
    for c in chunks:
        problems = check_named(c.model_dump(exclude_unset=True), "CreateCompletionResponse")
        assert [p for p in problems if not p.endswith("finish_reason: None is not of type ['string']")] == []


def test_chat_matches_generate_on_rendered_template(server, client):
    messages = [{"role": "user", "content": "Hello, my name is"}]
    rendered = render_chat(messages)
    gen = requests.post(server.url + "/generate",
                        json={"text": rendered, "sampling_params": GREEDY}).json()
    chat = client.chat.completions.create(model=MODEL_NAME, messages=messages, max_tokens=16,
                                          temperature=0, extra_body={"ignore_eos": True})
    assert chat.choices[0].message.content == gen["text"]
    assert chat.choices[0].message.role == "assistant"
    assert chat.usage.prompt_tokens == gen["meta_info"]["prompt_tokens"]
    raw = requests.post(server.url + "/v1/chat/completions",
                        json={"model": MODEL_NAME, "messages": messages, "max_tokens": 16,
                              "temperature": 0, "ignore_eos": True, "logprobs": True,
                              "top_logprobs": 2}).json()
    assert check_named(raw, "CreateChatCompletionResponse") == []
    assert raw["choices"][0]["message"]["content"] == gen["text"]
    assert len(raw["choices"][0]["logprobs"]["content"]) == 16

    stream = client.chat.completions.create(model=MODEL_NAME, messages=messages, max_tokens=16,
                                            temperature=0, stream=True,
                                            stream_options={"include_usage": True},
                                            extra_body={"ignore_eos": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == gen["text"]
    assert chunks[-1].usage.total_tokens == chat.usage.total_tokens
    for c in chunks:
        assert check_named(c.model_dump(exclude_unset=True), "CreateChatCompletionStreamResponse") == []


def test_chat_n_and_seed(client):
    messages = [{"role": "user", "content": "Say something"}]
    a = client.chat.completions.create(model=MODEL_NAME, messages=messages, max_tokens=8, n=2,
                                       temperature=1.0, seed=1234)
    b = client.chat.completions.create(model=MODEL_NAME, messages=messages, max_tokens=8, n=2,
                                       temperature=1.0, seed=1234)
    assert len(a.choices) == 2 and [c.index for c in a.choices] == [0, 1]
    assert [c.message.content for c in a.choices] == [c.message.content for c in b.choices]


def test_stop_string(client, golden):
    # Stop at a piece of the golden continuation: the text ends right before it.
    full = golden["greedy_text"][0]
    stop = full[10:14]
    c = client.completions.create(model=MODEL_NAME, prompt=golden["texts"][0], max_tokens=16,
                                  temperature=0, stop=[stop])
    assert c.choices[0].text == full[:full.index(stop)]
    assert c.choices[0].finish_reason == "stop"
