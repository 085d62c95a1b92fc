"""Every route of SGLang's HTTP server answers on Sable: served, or 501 naming the feature.

The list is not copied here: it is read from the installed `sglang` wheel's
sglang/srt/entrypoints/http_server.py (and the routers it includes), by parsing the source with
`ast`, so the check follows the pinned wheel (scripts/install-deps.sh) and never imports sglang
(whose top-level package pulls in torch). Sable's own list of what it does not implement is
server/routes_not_implemented.cpp.
"""
import ast
import importlib.util
import json
import os
import socket

import pytest
import requests

ROUTER_FILES = ["http_server.py", "v1_loads.py", "elastic_ep.py"]
METHODS = {"get", "post", "put", "delete", "head", "api_route"}


def sglang_entrypoints_dir():
    spec = importlib.util.find_spec("sglang")  # locates the package without running __init__
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the sglang wheel is not installed (scripts/install-deps.sh installs it)")
    return os.path.join(list(spec.submodule_search_locations)[0], "srt", "entrypoints")


def route_path(arg):
    """A decorator's path: a string, or os.environ.get(NAME, "/default") for the renamable ones."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.Call) and len(arg.args) == 2 and isinstance(arg.args[1], ast.Constant):
        return arg.args[1].value
    return None


def sglang_routes():
    """{(METHOD, path)} of every @app.<method>(...) / @router.<method>(...) decorator."""
    routes = set()
    base = sglang_entrypoints_dir()
    for name in ROUTER_FILES:
        with open(os.path.join(base, name)) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for d in node.decorator_list:
                if not (isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
                        and d.func.attr in METHODS and d.args):
                    continue
                path = route_path(d.args[0])
                if path is None:
                    continue
                if d.func.attr == "api_route":
                    methods = next(ast.literal_eval(k.value) for k in d.keywords if k.arg == "methods")
                else:
                    methods = [d.func.attr.upper()]
                routes.update((m, path) for m in methods)
    return routes


def concrete(path):
    """A request path for a route pattern: {param} and {param:path} get a sample value."""
    return (path.replace("{model:path}", "qwen2_tok").replace("{response_id}", "resp_1")
            .replace("{method}", "start"))


def test_the_wheel_has_the_routes_this_test_expects():
    routes = sglang_routes()
    # A broken parse would pass the next test vacuously.
    assert len(routes) > 100
    for expected in [("GET", "/server_info"), ("GET", "/get_server_info"), ("GET", "/model_info"),
                     ("GET", "/get_model_info"), ("POST", "/flush_cache"), ("GET", "/v1/models"),
                     ("GET", "/v1/models/{model:path}"), ("POST", "/generate")]:
        assert expected in routes


def test_every_sglang_route_is_served_or_501(server):
    served, missing, wrong = [], [], []
    for method, path in sorted(sglang_routes(), key=lambda r: (r[1], r[0])):
        url = server.url + concrete(path)
        # Bodiless requests: the input routes answer 400 naming what is missing, nothing runs.
        r = requests.request(method, url, timeout=60)
        if r.status_code in (404, 405):
            wrong.append(f"{method} {path}: {r.status_code}")
        elif r.status_code == 501:
            err = r.json()["error"]
            if err["code"] != "not_implemented" or "not implemented by Sable" not in err["message"]:
                wrong.append(f"{method} {path}: 501 without the feature named: {err}")
            missing.append(path)
        else:
            served.append(path)
    assert not wrong, "\n".join(wrong)
    # The routes this issue is about are served, not 501.
    for path in ["/server_info", "/model_info", "/flush_cache", "/health", "/health_generate",
                 "/update_weights_from_disk", "/v1/models", "/generate", "/ready", "/ping"]:
        assert path in served and path not in missing, path


def test_new_names_and_aliases_agree(server):
    a = requests.get(server.url + "/model_info").json()
    b = requests.get(server.url + "/get_model_info").json()
    assert a == b and a["is_generation"] is True
    a = requests.get(server.url + "/server_info").json()
    b = requests.get(server.url + "/get_server_info").json()
    assert a.keys() == b.keys() and a["port"] == b["port"]
    assert requests.get(server.url + "/ready").status_code == 200
    assert requests.get(server.url + "/v1/models/qwen2_tok").json()["id"] == "qwen2_tok"


def raw_request(server, request, timeout=10):
    """Sends raw bytes on a connection left open (as curl does) and returns the status line."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(request)
        return s.recv(4096).split(b"\r\n", 1)[0].decode()


def test_bodiless_post_is_accepted(server):
    # `curl -X POST /flush_cache` sends no Content-Length and keeps the connection open.
    for path in ["/flush_cache", "/start_expert_distribution_record"]:
        line = raw_request(server, f"POST {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert line.split()[1] in ("200", "400"), (path, line)
    assert raw_request(server, b"POST /flush_cache HTTP/1.1\r\nHost: x\r\n\r\n").endswith("200 OK")
    r = requests.post(server.url + "/flush_cache")  # requests sends Content-Length: 0
    assert r.status_code == 200
    # A route that needs input says what is missing instead of waiting for a body.
    line = raw_request(server, b"POST /generate HTTP/1.1\r\nHost: x\r\n\r\n")
    assert line.split()[1] == "400", line


def test_parse_function_call_and_separate_reasoning(server):
    text = 'Hi<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>'
    tools = [{"type": "function", "function": {"name": "g"}}, {"type": "function", "function": {"name": "f"}}]
    r = requests.post(server.url + "/parse_function_call",
                      json={"text": text, "tool_call_parser": "qwen25", "tools": tools})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["normal_text"] == "Hi"
    assert [(c["tool_index"], c["name"], json.loads(c["parameters"])) for c in out["calls"]] == \
        [(1, "f", {"a": 1})]
    r = requests.post(server.url + "/separate_reasoning",
                      json={"text": "<think>r</think>ok", "reasoning_parser": "qwen3",
                            "return_blocks": True})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["reasoning_text"], out["text"]) == ("r", "ok")
    assert out["blocks"] == [{"type": "reasoning", "text": "r"}, {"type": "text", "text": "ok"}]
    for path, body, field in [
            ("/parse_function_call", {"text": text, "tool_call_parser": "nope"}, "tool_call_parser"),
            ("/parse_function_call", {"tool_call_parser": "qwen25"}, "text"),
            ("/separate_reasoning", {"text": "x", "reasoning_parser": "nope"}, "reasoning_parser")]:
        r = requests.post(server.url + path, json=body)
        assert r.status_code == 400 and r.json()["error"]["param"] == field, (path, r.text)
