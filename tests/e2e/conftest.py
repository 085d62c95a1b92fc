"""Fixtures of the end-to-end suite: the real `sable serve` binary on a free loopback port.

The server is started once per session (and a second instance with --api-key for the auth tests);
SABLE_BIN names the binary (ctest sets it), else build*/bin/sable under the source tree is used.
"""
import glob
import json
import os
import signal
import socket
import subprocess
import time

import pytest
import requests

SOURCE_DIR = os.environ.get(
    "SABLE_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
MODEL_DIR = os.path.join(SOURCE_DIR, "tests", "golden", "models", "qwen2_tok")
MODEL_NAME = "qwen2_tok"
API_KEY = "e2e-secret"


def sable_binary():
    if os.environ.get("SABLE_BIN"):
        return os.environ["SABLE_BIN"]
    found = sorted(glob.glob(os.path.join(SOURCE_DIR, "build*", "bin", "sable")), key=os.path.getmtime)
    if not found:
        pytest.skip("no sable binary: build it or set SABLE_BIN")
    return found[-1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One running `sable serve`; url is http://127.0.0.1:<port>."""

    def __init__(self, *extra_args, api_key=None, grace_s=5, model_dir=MODEL_DIR,
                 model_name=MODEL_NAME, env=None, max_total_tokens=32768):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_key = api_key
        args = [sable_binary(), "serve", "--model-path", model_dir, "--host", "127.0.0.1",
                "--port", str(self.port), "--served-model-name", model_name, "--device", "cpu",
                "--max-total-tokens", str(max_total_tokens), "--shutdown-grace-period-s", str(grace_s),
                *extra_args]
        if api_key:
            args += ["--api-key", api_key]
        self.log_path = os.path.join("/tmp", f"sable-e2e-{self.port}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        self.wait_ready()

    def headers(self):
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def wait_ready(self, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sable serve exited with {self.proc.returncode}:\n{self.read_log()}")
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"sable serve not ready after {timeout}s:\n{self.read_log()}")

    def read_log(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Sends `sig` and returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def golden():
    with open(os.path.join(MODEL_DIR, "golden.json")) as f:
        return json.load(f)


@pytest.fixture(scope="session")
def server():
    s = Server("--enable-metrics")
    yield s
    code = s.stop()
    assert code == 0, f"sable serve exited with {code} after SIGTERM:\n{s.read_log()}"


@pytest.fixture(scope="session")
def auth_server():
    s = Server("--max-request-body-bytes", "65536", api_key=API_KEY)
    yield s
    s.stop()


def sse_events(response):
    """The data: payloads of an SSE response, in order ("[DONE]" included)."""
    events = []
    for line in response.iter_lines(decode_unicode=False):
        if line.startswith(b"data: "):
            events.append(line[len(b"data: "):].decode("utf-8"))
    return events
