"""The helpers SGLang's documentation imports from sglang.utils, so its programs run unchanged
(`from sable.utils import stream_and_merge, ...`)."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any, AsyncIterator


def trim_overlap(existing_text: str, new_chunk: str) -> str:
    """new_chunk without its longest prefix that is a suffix of existing_text."""
    for i in range(min(len(existing_text), len(new_chunk)), 0, -1):
        if existing_text.endswith(new_chunk[:i]):
            return new_chunk[i:]
    return new_chunk


def stream_and_merge(llm: Any, prompt: str, sampling_params: dict) -> str:
    final_text = ""
    for chunk in llm.generate(prompt, sampling_params, stream=True):
        final_text += trim_overlap(final_text, chunk["text"])
    return final_text


async def async_stream_and_merge(llm: Any, prompt: str, sampling_params: dict) -> AsyncIterator[str]:
    final_text = ""
    generator = await llm.async_generate(prompt, sampling_params, stream=True)
    async for chunk in generator:
        cleaned = trim_overlap(final_text, chunk["text"])
        final_text += cleaned
        yield cleaned


def print_highlight(html_content: Any) -> None:
    print(f"\033[1m{html_content}\033[0m")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_server_cmd(command: str, host: str = "0.0.0.0", port: Any = None):
    """Starts `command` (e.g. "python -m sable.launch_server --model-path ...") on a free port;
    returns (process, port)."""
    port = port or _free_port()
    args = shlex.split(command)
    if args and args[0] in ("python", "python3"):
        args[0] = sys.executable
    if "--host" not in args:
        args += ["--host", host]
    args += ["--port", str(port)]
    return subprocess.Popen(args), port


def wait_for_server(base_url: str, timeout: float = 300.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(base_url + "/health", timeout=5) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{base_url} did not become ready in {timeout} s")


def terminate_process(process: subprocess.Popen, timeout: float = 30.0) -> None:
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
