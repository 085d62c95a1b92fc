"""Error paths: every status the server promises, with OpenAI-shaped bodies naming the field."""
import openai
import pytest
import requests

from conftest import API_KEY, MODEL_NAME


def error_of(r):
    body = r.json()
    assert set(body["error"]) >= {"message", "type", "param", "code"}
    return body["error"]


def test_malformed_json_is_400(server):
    for path in ["/generate", "/v1/completions", "/v1/chat/completions"]:
        r = requests.post(server.url + path, data="{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 400, path
        assert "JSON" in error_of(r)["message"]


def test_wrong_types_name_the_field(server):
    cases = [
        ("/generate", {"text": "a", "sampling_params": {"temperature": "hot"}}, "temperature"),
        ("/generate", {"text": "a", "sampling_params": {"top_p": 1.5}}, "top_p"),
        ("/generate", {"text": 5}, "text"),
        ("/generate", {"input_ids": [1, -3]}, "input_ids"),
        ("/generate", {}, "text"),
        ("/v1/completions", {"model": MODEL_NAME, "prompt": "a", "max_tokens": "ten"}, "max_tokens"),
        ("/v1/completions", {"model": MODEL_NAME}, "prompt"),
        ("/v1/chat/completions", {"model": MODEL_NAME, "messages": []}, "messages"),
        ("/v1/chat/completions", {"model": MODEL_NAME, "messages": "hi"}, "messages"),
        ("/tokenize", {"prompt": 3}, "prompt"),
        ("/detokenize", {"tokens": ["a"]}, "tokens"),
    ]
    for path, body, field in cases:
        r = requests.post(server.url + path, json=body)
        assert r.status_code == 400, (path, body, r.text)
        err = error_of(r)
        assert err["param"] == field or field in err["message"], (path, body, err)


def test_unknown_model_is_404_model_not_found(server):
    for path, body in [("/v1/completions", {"prompt": "a"}),
                       ("/v1/chat/completions", {"messages": [{"role": "user", "content": "a"}]}),
                       ("/tokenize", {"prompt": "a"})]:
        r = requests.post(server.url + path, json={"model": "gpt-17", **body})
        assert r.status_code == 404, (path, r.text)
        err = error_of(r)
        assert err["param"] == "model" and err["code"] == "model_not_found", path
        assert "gpt-17" in err["message"]
    # The served name and the model path are both accepted.
    info = requests.get(server.url + "/model_info").json()
    for name in [MODEL_NAME, info["model_path"]]:
        r = requests.post(server.url + "/v1/completions",
                          json={"model": name, "prompt": "a", "max_tokens": 1})
        assert r.status_code == 200, (name, r.text)


def test_unknown_route_and_model_card_are_404(server):
    assert requests.get(server.url + "/v2/nothing").status_code == 404
    r = requests.get(server.url + "/v1/models/gpt-17")
    assert r.status_code == 404
    assert error_of(r)["code"] == "model_not_found"


def test_context_too_long_is_400_context_length_exceeded(server):
    info = requests.get(server.url + "/server_info").json()
    n = info["max_req_input_len"] + 10
    for path, body in [("/generate", {"input_ids": [9707] * n}),
                       ("/generate", {"text": "hello " * n}),
                       ("/v1/completions", {"model": MODEL_NAME, "prompt": [9707] * n}),
                       ("/v1/chat/completions",
                        {"model": MODEL_NAME, "messages": [{"role": "user", "content": "hi " * n}]})]:
        r = requests.post(server.url + path, json=body)
        assert r.status_code == 400, (path, r.text)
        assert error_of(r)["code"] == "context_length_exceeded", path


def test_unknown_message_role_is_400_naming_it(server):
    r = requests.post(server.url + "/v1/chat/completions",
                      json={"model": MODEL_NAME, "messages": [{"role": "user", "content": "a"},
                                                               {"role": "wizard", "content": "b"}]})
    assert r.status_code == 400
    err = error_of(r)
    assert err["param"] == "messages[1].role"
    assert "'wizard'" in err["message"]
    for role in ["system", "developer", "user", "assistant", "tool", "function"]:
        assert role in err["message"]


def test_openai_client_raises_typed_errors(server):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=MODEL_NAME, prompt="a", temperature=-1)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt="a")


def test_auth(auth_server):
    url = auth_server.url
    assert requests.get(url + "/health").status_code == 200
    for path in ["/get_model_info", "/v1/models", "/get_server_info"]:
        r = requests.get(url + path)
        assert r.status_code == 401, path
        assert error_of(r)["type"] == "authentication_error"
        assert requests.get(url + path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert requests.get(url + path, headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
    r = requests.post(url + "/generate", json={"text": "a"})
    assert r.status_code == 401
    client = openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    client = openai.OpenAI(base_url=url + "/v1", api_key=API_KEY, max_retries=0)
    assert client.models.list().data[0].id == MODEL_NAME


def test_body_too_large_is_413(auth_server):
    r = requests.post(auth_server.url + "/generate", json={"text": "a" * 100000},
                      headers=auth_server.headers())
    assert r.status_code == 413
    assert error_of(r)["code"] == "request_too_large"


def test_garbage_does_not_crash(server):
    for body in [b"\xff\xfe\x00", b"[]", b"null", b'{"text": {"a": 1}}', b'{"sampling_params": []}',
                 b'{"text": "a", "sampling_params": {"max_new_tokens": 1e30}}']:
        r = requests.post(server.url + "/generate", data=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (body, r.text)
    assert requests.get(server.url + "/health").status_code == 200
