"""Limits with clear errors (docs/configuration.md, "Limits, slow clients and shutdown"): requests
over a per-request limit are 400 naming the field and the option, output stops at the context,
slow clients get 408 and cannot starve the others, one connection's requests are answered in
order."""
import select
import socket
import threading
import time

import requests

from conftest import MODEL_NAME, Server


def error_of(r):
    return r.json()["error"]


def test_per_request_limits_are_400_naming_the_field_and_option(server):
    chat = {"model": MODEL_NAME, "messages": [{"role": "user", "content": "a"}]}
    cases = [
        ("/generate", {"text": "a", "sampling_params": {"n": 129}}, "n", "max_parallel_samples"),
        ("/v1/completions", {"model": MODEL_NAME, "prompt": "a", "n": 129}, "n",
         "max_parallel_samples"),
        ("/v1/chat/completions", {**chat, "n": 129}, "n", "max_parallel_samples"),
        ("/generate", {"text": ["a"] * 1025}, "text", "max_prompts_per_request"),
        ("/v1/completions", {"model": MODEL_NAME, "prompt": [[9707]] * 1025}, "prompt",
         "max_prompts_per_request"),
        ("/generate", {"text": "a", "sampling_params": {"stop": [f"s{i}" for i in range(65)]}},
         "stop", "max_stop_strings"),
        ("/v1/chat/completions", {**chat, "stop": [f"s{i}" for i in range(65)]}, "stop",
         "max_stop_strings"),
        ("/generate", {"text": "a", "sampling_params": {"regex": "a" * 300000}}, "regex",
         "max_grammar_bytes"),
        ("/v1/chat/completions",
         {**chat, "response_format": {"type": "json_schema", "json_schema": {
             "name": "x", "schema": {"type": "object", "description": "d" * 300000}}}},
         "json_schema", "max_grammar_bytes"),
    ]
    for path, body, field, option in cases:
        r = requests.post(server.url + path, json=body, timeout=60)
        assert r.status_code == 400, (path, field, r.text[:300])
        err = error_of(r)
        assert err["param"] == field, (path, err)
        assert option in err["message"], (path, err)
    assert requests.get(server.url + "/health", timeout=10).status_code == 200


def test_max_tokens_beyond_the_context_stops_at_the_context(server):
    info = requests.get(server.url + "/server_info", timeout=10).json()
    context = info["context_length_effective"]
    prompt = [9707] * (context - 40)
    r = requests.post(server.url + "/generate", timeout=120, json={
        "input_ids": prompt, "sampling_params": {"max_new_tokens": 10**9, "ignore_eos": True}})
    assert r.status_code == 200, r.text
    meta = r.json()["meta_info"]
    assert meta["finish_reason"]["type"] == "length"
    assert meta["prompt_tokens"] + meta["completion_tokens"] == context


def slow_loris(port, results, i):
    """Sends a request's headers a byte every 200 ms; records what the server answered."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    t0 = time.time()
    try:
        s.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\n")
        for _ in range(40):
            if select.select([s], [], [], 0.2)[0]:
                break  # the server answered
            s.sendall(b"X")
    except OSError:
        pass  # the server closed the connection
    answer = b""
    try:
        while chunk := s.recv(4096):  # the head and the body may come in separate segments
            answer += chunk
    except OSError as e:
        answer += repr(e).encode()
    results[i] = (answer, time.time() - t0)
    s.close()


def test_slow_clients_get_408_and_do_not_starve_the_others():
    s = Server("--request-timeout-s", "1")
    try:
        results = {}
        threads = [threading.Thread(target=slow_loris, args=(s.port, results, i)) for i in range(32)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        # Served meanwhile, at normal speed.
        for _ in range(5):
            r = requests.post(s.url + "/generate", timeout=30,
                              json={"text": "hi", "sampling_params": {"max_new_tokens": 4}})
            assert r.status_code == 200, r.text
        for t in threads:
            t.join(timeout=30)
        assert len(results) == 32
        for answer, took in results.values():
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert b"request_timeout" in answer
            assert took < 5, took
    finally:
        code = s.stop()
    assert code == 0


def test_pipelined_requests_on_one_connection_are_answered_in_order(server):
    body = b'{"text": "hi", "sampling_params": {"max_new_tokens": 3, "temperature": 0}}'
    req = (b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    last = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(req + req + last)  # three requests in one write
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200") == 3, data[:500]
    first, second, third = data.find(b'"output_ids"'), data.rfind(b'"output_ids"'), data.find(b'"object":"list"')
    assert 0 < first < second < third, data[:500]
