"""`--tp-size` on the CPU through the real binary: two in-process ranks serve the golden qwen2_tok
(2 query heads, 1 KV head: the KV head is replicated on both ranks) with the greedy texts of TP 1
and one startup line per rank; a size the heads do not allow stops startup with the reason; a rank
that dies while serving stops the server by itself, with the reason in the log, instead of hanging
or answering 500s forever."""
import subprocess
import time

import pytest
import requests

from conftest import MODEL_DIR, Server, free_port, sable_binary

GREEDY = {"temperature": 0, "max_new_tokens": 16, "ignore_eos": True}


@pytest.fixture(scope="module")
def tp2_server():
    s = Server("--tp-size", "2", "--skip-server-warmup")
    yield s
    code = s.stop()
    assert code == 0, s.read_log()


@pytest.mark.parametrize("i", range(2))
def test_tp2_greedy_matches_golden(tp2_server, golden, i):
    r = requests.post(tp2_server.url + "/generate",
                      json={"text": golden["texts"][i], "sampling_params": GREEDY}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["output_ids"] == golden["greedy_ids"][i]


def test_tp2_logs_one_line_per_rank(tp2_server):
    log = tp2_server.read_log()
    assert "tensor parallelism: 2 ranks on CPU threads of this process, communicator 'cpu'" in log
    for rank in range(2):
        assert f"tp rank {rank} of 2: device cpu, " in log and "of weights held" in log, log


def test_tp_size_the_heads_do_not_allow_stops_startup():
    args = [sable_binary(), "serve", "--model-path", MODEL_DIR, "--host", "127.0.0.1", "--port",
            str(free_port()), "--device", "cpu", "--tp-size", "4", "--skip-server-warmup"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    out = done.stdout + done.stderr
    assert "tp_size 4 does not divide num_attention_heads 2" in out, out


def test_a_rank_dying_while_serving_stops_the_server():
    s = Server("--tp-size", "2", "--skip-server-warmup", env={"SABLE_FAULT_TP_RANK": "1:forward:2"})
    try:
        body = {"input_ids": [785, 6722, 315], "sampling_params": GREEDY}
        r = requests.post(s.url + "/generate", json=body, timeout=60)
        assert r.status_code >= 500 or r.json()["meta_info"]["finish_reason"]["type"] == "abort", r.text
        deadline = time.time() + 30
        while s.proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert s.proc.poll() == 1, s.read_log()
        log = s.read_log()
        assert "tensor-parallel rank 1 failed: fault injected on forward 2" in log, log
        assert "stopping the server: the model cannot serve any more" in log, log
    finally:
        s.stop()
