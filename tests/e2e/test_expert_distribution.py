"""Expert distribution routes on a MoE model (golden qwen2_moe: 2 MoE layers, 8 experts, top-2):
start, one greedy request of P prompt and N generated tokens, dump -> per layer the counts sum to
(P + N - 1) x top_k, inline and in the CSV the dump wrote; dump resets; a server without
--expert-distribution-recorder-mode answers 400 naming the option."""
import csv
import os

import pytest
import requests

from conftest import SOURCE_DIR, Server

MOE_DIR = os.path.join(SOURCE_DIR, "tests", "golden", "models", "qwen2_moe")
TOKENIZER_DIR = os.path.join(SOURCE_DIR, "tests", "golden", "tokenizers", "qwen3")  # the model has none
LAYERS, EXPERTS, TOP_K = 2, 8, 2


@pytest.fixture(scope="module")
def moe_server(tmp_path_factory):
    dump_dir = str(tmp_path_factory.mktemp("expert_dumps"))
    s = Server("--expert-distribution-recorder-mode", "stat", "--tokenizer-path", TOKENIZER_DIR,
               "--skip-server-warmup", model_dir=MOE_DIR, model_name="qwen2_moe",
               env={"SABLE_EXPERT_DISTRIBUTION_RECORDER_DIR": dump_dir})
    s.dump_dir = dump_dir
    yield s
    s.stop()


def generate(server, ids, n):
    r = requests.post(server.url + "/generate", json={
        "input_ids": ids,
        "sampling_params": {"temperature": 0, "max_new_tokens": n, "ignore_eos": True}})
    assert r.status_code == 200, r.text
    assert len(r.json()["output_ids"]) == n


def check_dump(body, tokens):
    assert body["success"] is True
    assert body["layers"] == LAYERS and body["experts"] == EXPERTS
    counts = body["counts"]
    assert len(counts) == LAYERS and all(len(row) == EXPERTS for row in counts)
    for layer, row in enumerate(counts):
        assert sum(row) == tokens * TOP_K, (layer, row)
        assert all(0 <= c <= tokens for c in row), row
    assert body["total"] == tokens * TOP_K * LAYERS


def test_counts_over_a_request_sum_to_tokens_times_top_k(moe_server):
    url = moe_server.url
    r = requests.post(url + "/start_expert_distribution_record")
    assert r.status_code == 200 and r.json()["success"] is True
    prompt, n = [5, 17, 29, 41, 53, 65, 77, 89, 101], 6
    generate(moe_server, prompt, n)
    body = requests.post(url + "/dump_expert_distribution_record").json()
    check_dump(body, len(prompt) + n - 1)
    assert body["recording"] is True and body["mode"] == "stat"

    # The same counts were written as CSV (layer_id,expert_id,count) under the dump directory.
    path = body["path"]
    assert os.path.dirname(path) == moe_server.dump_dir
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == LAYERS * EXPERTS
    for row in rows:
        assert int(row["count"]) == body["counts"][int(row["layer_id"])][int(row["expert_id"])]

    # dump reset the counts; stop freezes them; GET works as well as POST.
    check_dump(requests.get(url + "/dump_expert_distribution_record").json(), 0)
    assert requests.get(url + "/stop_expert_distribution_record").status_code == 200
    generate(moe_server, [7, 8, 9], 2)
    body = requests.post(url + "/dump_expert_distribution_record").json()
    check_dump(body, 0)
    assert body["recording"] is False


def test_routes_refuse_when_the_mode_is_off(server):
    for route in ["start", "stop", "dump"]:
        r = requests.post(server.url + f"/{route}_expert_distribution_record")
        assert r.status_code == 400, (route, r.text)
        assert "expert-distribution-recorder-mode" in r.json()["error"]["message"]
