"""Fixtures of the Python package's suite: `sable` imported from the build tree (ctest sets
PYTHONPATH to build/python), engines on the golden checkpoints (random weights, real tokenizers:
the text is gibberish, so tests assert constraints and counts, never words), and a server started
with `python -m sable.launch_server` for the HTTP-side comparisons."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

SOURCE_DIR = os.environ.get(
    "SABLE_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
MODELS = os.path.join(SOURCE_DIR, "tests", "golden", "models")
MODEL_DIR = os.path.join(MODELS, "qwen2_tok")
# Small pools keep the CPU engines light; the same options serve the HTTP comparison server.
ENGINE_ARGS = dict(device="cpu", max_total_tokens=32768, random_seed=1, num_threads=1)

import sable  # noqa: E402  (ctest puts build/python on PYTHONPATH)


@pytest.fixture(scope="session")
def engine():
    llm = sable.Engine(model_path=MODEL_DIR, **ENGINE_ARGS)
    yield llm
    llm.shutdown()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LaunchedServer:
    """`python -m sable.launch_server` on a free loopback port."""

    def __init__(self, *extra):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "sable.launch_server", "--model-path", MODEL_DIR,
                "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu",
                "--max-total-tokens", "32768", "--random-seed", "1", "--num-threads", "1",
                "--shutdown-grace-period-s", "2", *extra]
        self.log_path = f"/tmp/sable-py-launch-{self.port}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"launch_server exited with {self.proc.returncode}:\n"
                                   f"{open(self.log_path).read()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except Exception:
                time.sleep(0.2)
        raise RuntimeError("launch_server did not become ready")

    def stop(self):
        self.proc.terminate()
        code = self.proc.wait(60)
        self.log.close()
        return code


@pytest.fixture(scope="module")
def launched():
    server = LaunchedServer("--api-key", "py-secret")
    yield server
    server.stop()
