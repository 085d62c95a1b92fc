"""Many concurrent streaming clients (>= 64) all complete with the right text; SIGTERM drains."""
import json
from concurrent.futures import ThreadPoolExecutor

import requests

from conftest import Server, sse_events

GREEDY = {"temperature": 0, "max_new_tokens": 16, "ignore_eos": True}


def test_64_concurrent_streams(server, golden):
    def one(i):
        k = i % len(golden["texts"])
        r = requests.post(server.url + "/generate", stream=True, timeout=300,
                          json={"text": golden["texts"][k], "sampling_params": GREEDY, "stream": True})
        events = sse_events(r)
        assert events[-1] == "[DONE]"
        return k, json.loads(events[-2])["text"]

    with ThreadPoolExecutor(max_workers=64) as pool:
        results = list(pool.map(one, range(64)))
    assert len(results) == 64
    for k, text in results:
        assert text == golden["greedy_text"][k]


def test_sigterm_drains_in_flight_requests_and_exits_0(golden):
    s = Server(grace_s=30)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            fut = pool.submit(requests.post, s.url + "/generate", timeout=120,
                              json={"text": golden["texts"][0],
                                    "sampling_params": {**GREEDY, "max_new_tokens": 200}})
            import time
            time.sleep(0.3)
            code = s.stop()
            r = fut.result()
        assert code == 0, s.read_log()
        assert r.status_code == 200
        assert r.json()["meta_info"]["completion_tokens"] == 200
    finally:
        s.stop()
