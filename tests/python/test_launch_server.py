"""`python -m sable.launch_server` serves like `sable serve`, Engine results are the very dicts
/generate answers, and frontend programs run over HTTP through RuntimeEndpoint(url, api_key)."""

import json
import re
import subprocess
import sys
import urllib.request

import pytest
import sable
from sable import RuntimeEndpoint, assistant, function, gen, user

from conftest import MODEL_DIR

API_KEY = "py-secret"


def post(url, path, body, api_key=API_KEY):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"Bearer {api_key}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def strip_run_specific(out):
    """What differs between two runs of the same request: the id and the timing."""
    items = out if isinstance(out, list) else [out]
    for item in items:
        item["meta_info"].pop("id")
        item["meta_info"].pop("e2e_latency")
        item["meta_info"].pop("cached_tokens")
    return out


def same(a, b):
    """Equal structure and values; floats within 1e-4 (the two processes batch the requests
    differently, so log-probabilities differ in the last float bits)."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) < 1e-4
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    return a == b


def test_help_and_bad_flags_exit_like_sable_serve():
    shown = subprocess.run([sys.executable, "-m", "sable.launch_server", "--help"],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0
    assert "--model-path" in shown.stdout and "--mem-fraction-static" in shown.stdout
    bad = subprocess.run([sys.executable, "-m", "sable.launch_server", "--model-path", MODEL_DIR,
                          "--port", "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "port" in bad.stderr


def test_engine_results_equal_http_generate(launched, engine):
    body = {"text": ["The capital of France is", "Hello"],
            "sampling_params": {"temperature": 0, "max_new_tokens": 8, "ignore_eos": True},
            "return_logprob": True, "top_logprobs_num": 2}
    over_http = post(launched.url, "/generate", body)
    in_process = engine.generate(body["text"], body["sampling_params"], return_logprob=True,
                                 top_logprobs_num=2)
    assert same(strip_run_specific(in_process), strip_run_specific(over_http))
    assert in_process[0]["meta_info"]["output_top_logprobs"][0][0][1] == in_process[0]["output_ids"][0]


def test_api_key_is_enforced(launched):
    with pytest.raises(urllib.error.HTTPError) as e:
        post(launched.url, "/generate", {"text": "x"}, api_key="wrong")
    assert e.value.code == 401
    with pytest.raises(ValueError, match="401"):
        RuntimeEndpoint(launched.url, api_key="wrong")


def test_programs_over_runtime_endpoint(launched, engine):
    backend = RuntimeEndpoint(launched.url, api_key=API_KEY)
    sable.set_default_backend(backend)

    @function
    def qa(s, question):
        s += user(question)
        s += assistant(gen("answer", max_tokens=8, regex=r"[0-9]{1,3}"))
        s += user("And a color?")
        s += assistant(gen("color", choices=["red", "green", "blue"]))

    state = qa("How many?")
    assert re.fullmatch(r"[0-9]{1,3}", state["answer"])
    assert state["color"] in ("red", "green", "blue")
    # Roles come from the served model's template (its folder is readable here): the same as the
    # in-process engine derives.
    assert backend.roles == sable.EngineBackend(engine).roles
    assert state.text().startswith("<|im_start|>user\nHow many?<|im_end|>\n<|im_start|>assistant\n")

    @function
    def streamed(s):
        s += user("Stream?")
        s += assistant(gen("answer", max_tokens=10))

    st = streamed.run(stream=True)
    assert "".join(st.text_iter()) == st.text()
    assert backend.get_server_info()["model_path"] == MODEL_DIR


def test_frontend_doc_server_flow():
    # The page's first cells: launch_server_cmd, wait_for_server, RuntimeEndpoint, a program,
    # terminate_process (sglang.utils -> sable.utils).
    from sable.utils import launch_server_cmd, terminate_process, wait_for_server

    server_process, port = launch_server_cmd(
        f"python -m sable.launch_server --model-path {MODEL_DIR} --device cpu "
        f"--max-total-tokens 32768 --num-threads 1 --log-level warning")
    try:
        wait_for_server(f"http://localhost:{port}")
        sable.set_default_backend(RuntimeEndpoint(f"http://localhost:{port}"))

        @function
        def basic_qa(s, question):
            s += sable.system("You are a helpful assistant than can answer questions.")
            s += user(question)
            s += assistant(gen("answer", max_tokens=16))

        state = basic_qa("List 3 countries and their capitals.")
        assert 0 < state.get_meta_info("answer")["completion_tokens"] <= 16
    finally:
        terminate_process(server_process)
    assert server_process.returncode == 0
