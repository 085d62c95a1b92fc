"""Engine beyond generate: the GIL is released while C++ works, Ctrl-C aborts a request, a dropped
stream frees its request, the control calls (server info, cache, weights, expert record,
embeddings, tokenizer, LoRA adapters with gen(lora_path)) and the engine's life cycle."""

import gc
import json
import os
import signal
import threading
import time

import pytest
import sable

from conftest import ENGINE_ARGS, MODEL_DIR, MODELS

LONG = {"temperature": 0, "max_new_tokens": 3000, "ignore_eos": True}


def running(engine):
    return engine.get_server_info()["internal_states"][0]["num_running_reqs"]


def wait_running(engine, count, timeout=30):
    """The running count is published at the end of a scheduler step, which may come after the
    first chunk reached Python: poll for it rather than read it once."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if running(engine) == count:
            return True
        time.sleep(0.02)
    return False


def wait_idle(engine, timeout=30):
    return wait_running(engine, 0, timeout)


def test_gil_is_released_while_generating(engine):
    # A busy Python thread records the longest time it could not run. Were the GIL held while
    # C++ generates, that gap would be the whole generate() call.
    gap = 0.0
    done = threading.Event()

    def spin():
        nonlocal gap
        last = time.perf_counter()
        while not done.is_set():
            now = time.perf_counter()
            gap = max(gap, now - last)
            last = now

    spinner = threading.Thread(target=spin)
    spinner.start()
    start = time.perf_counter()
    engine.generate("GIL", {"temperature": 0, "max_new_tokens": 64, "ignore_eos": True})
    elapsed = time.perf_counter() - start
    done.set()
    spinner.join()
    assert gap < elapsed / 2, (gap, elapsed)


def test_ctrl_c_aborts_the_request(engine):
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    start = time.time()
    with pytest.raises(KeyboardInterrupt):
        engine.generate("interrupt me", LONG)
    assert time.time() - start < 5
    assert wait_idle(engine), "the interrupted request is still running"


def test_ctrl_c_during_stream_aborts_the_request(engine):
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        for _ in engine.generate("interrupt the stream", LONG, stream=True):
            pass
    assert wait_idle(engine)


def test_dropping_a_stream_frees_its_request(engine):
    it = engine.generate("drop me", LONG, stream=True)
    first = next(it)
    assert first["meta_info"]["finish_reason"] is None
    assert wait_running(engine, 1), "the stream's request is not running"
    del it
    gc.collect()
    assert wait_idle(engine), "the dropped stream's request is still running"


def test_cancelled_async_request_is_aborted(engine):
    import asyncio

    async def main():
        task = asyncio.ensure_future(engine.async_generate("cancel me", LONG))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert wait_idle(engine)


def test_server_info_and_model_info(engine):
    info = engine.get_server_info()
    assert info["model_path"] == MODEL_DIR
    assert info["max_total_num_tokens"] == 32768
    assert info["device"] == "cpu"
    assert "internal_states" in info and info["version"]
    assert engine.get_model_info()["is_generation"] is True


def test_flush_cache_and_update_weights(engine):
    engine.generate("cache this prefix please", {"max_new_tokens": 1})
    assert engine.flush_cache() is True
    ok, message, paused = engine.update_weights_from_disk(MODEL_DIR)
    assert ok is True, message
    ok, message, _ = engine.update_weights_from_disk(os.path.join(MODELS, "llama"))
    assert ok is False and message  # another architecture: refused, old weights keep serving
    assert engine.generate("still fine", {"max_new_tokens": 2})["meta_info"]["completion_tokens"]


def test_tokenizer_access(engine):
    tok = engine.tokenizer
    ids = tok.encode("Hello world")
    assert tok.decode(ids) == "Hello world"
    assert tok("Hello world")["input_ids"] == ids
    text = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                   add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n") and "<|im_start|>user\nHi<|im_end|>" in text
    assert tok.apply_chat_template([{"role": "user", "content": "Hi"}]) == tok.encode(
        tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False),
        add_special_tokens=False)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([10**8])


def test_expert_distribution_record(tmp_path, monkeypatch):
    # The dump is also written as CSV, under the recorder directory (not /tmp: every run left one).
    monkeypatch.setenv("SABLE_EXPERT_DISTRIBUTION_RECORDER_DIR", str(tmp_path))
    # The MoE checkpoint has no tokenizer of its own (as in the e2e suite).
    with sable.Engine(model_path=os.path.join(MODELS, "qwen2_moe"),
                      tokenizer_path=os.path.join(MODELS, "..", "tokenizers", "qwen3"),
                      expert_distribution_recorder_mode="stat", **ENGINE_ARGS) as llm:
        llm.start_expert_distribution_record()
        llm.generate(input_ids=[1, 2, 3, 4], sampling_params={"max_new_tokens": 4,
                                                               "ignore_eos": True})
        llm.stop_expert_distribution_record()
        dump = llm.dump_expert_distribution_record()
        assert dump["total"] > 0 and dump["layers"] > 0 and dump["experts"] > 0
        assert os.path.dirname(dump["path"]) == str(tmp_path) and os.path.isfile(dump["path"])


def test_lora_adapters_in_the_engine_and_in_lang():
    # The PEFT reference of tests/golden/lora/llama: each adapter's greedy tokens (ids only: the
    # golden llama has no tokenizer, the Qwen3 one stands in).
    lora = os.path.join(MODELS, "..", "lora", "llama")
    with open(os.path.join(lora, "golden.json")) as f:
        ref = json.load(f)
    greedy = {"temperature": 0, "max_new_tokens": 24, "ignore_eos": True}
    with sable.Engine(model_path=os.path.join(MODELS, "llama"),
                      tokenizer_path=os.path.join(MODELS, "..", "tokenizers", "qwen3"),
                      lora_paths=[f"a={os.path.join(lora, 'a')}"], **ENGINE_ARGS) as llm:
        prompt = ref["prompts"][1]
        out = llm.generate(input_ids=prompt, sampling_params=greedy, lora_path="a")
        assert out["output_ids"] == ref["adapters"]["a"]["greedy"][1]
        assert llm.load_lora_adapter("b", os.path.join(lora, "b")) == {
            "a": os.path.join(lora, "a"), "b": os.path.join(lora, "b")}
        outs = llm.generate(input_ids=[prompt, prompt], sampling_params=greedy,
                            lora_path=["b", "a"])
        assert [o["output_ids"] for o in outs] == [ref["adapters"]["b"]["greedy"][1],
                                                   ref["adapters"]["a"]["greedy"][1]]
        with pytest.raises(ValueError, match="unknown LoRA adapter 'c'"):
            llm.generate(input_ids=prompt, sampling_params=greedy, lora_path="c")
        # The finished requests released the adapter before their results reached Python.
        assert "b" not in llm.unload_lora_adapter("b")
        with pytest.raises(ValueError, match="'b' is not loaded"):
            llm.unload_lora_adapter("b")


def test_expert_record_off_is_a_clear_error(engine):
    with pytest.raises(ValueError, match="expert_distribution_recorder_mode"):
        engine.start_expert_distribution_record()


def test_encode_on_an_embedding_model():
    with sable.Engine(model_path=MODEL_DIR, is_embedding=True, **ENGINE_ARGS) as llm:
        one = llm.encode("an embedding")
        assert len(one["embedding"]) == 32  # hidden_size of the test checkpoint
        norm = sum(x * x for x in one["embedding"]) ** 0.5
        assert abs(norm - 1.0) < 1e-4
        batch = llm.encode(["a", "b c"])
        assert len(batch) == 2 and batch[1]["meta_info"]["prompt_tokens"] >= 2
        with pytest.raises(ValueError, match="embedding"):
            llm.generate("no generation here", {"max_new_tokens": 1})


def test_context_manager_and_use_after_shutdown():
    with sable.Engine(model_path=MODEL_DIR, **ENGINE_ARGS) as llm:
        assert llm.generate("ok", {"max_new_tokens": 1})["meta_info"]["completion_tokens"] == 1
    for call in (lambda: llm.generate("late", {"max_new_tokens": 1}),
                 lambda: llm.get_server_info(), lambda: llm.flush_cache(),
                 lambda: llm.tokenizer, lambda: llm.encode("x")):
        with pytest.raises(RuntimeError, match="has been shut down"):
            call()
    llm.shutdown()  # idempotent


def test_shutdown_ends_requests_in_flight():
    llm = sable.Engine(model_path=MODEL_DIR, **ENGINE_ARGS)
    it = llm.generate("long", LONG, stream=True)
    next(it)
    threading.Timer(0.2, llm.shutdown).start()
    start = time.time()
    with pytest.raises(RuntimeError, match="shutting down"):
        for _ in it:
            pass
    assert time.time() - start < 10


def test_lang_gen_runs_with_a_lora_adapter():
    # gen(lora_path=...) reaches the request: the program's text equals the engine's own output
    # with that adapter, and differs from the base model's. Short words keep the Qwen3 ids inside
    # the golden llama's 1000-token vocabulary.
    lora = os.path.join(MODELS, "..", "lora", "llama")
    greedy = {"temperature": 0, "max_new_tokens": 6, "ignore_eos": True}
    with sable.Engine(model_path=os.path.join(MODELS, "llama"),
                      tokenizer_path=os.path.join(MODELS, "..", "tokenizers", "qwen3"),
                      lora_paths=[f"a={os.path.join(lora, 'a')}"], **ENGINE_ARGS) as llm:
        want = llm.generate("a b c d", greedy, lora_path="a")["text"]
        assert want != llm.generate("a b c d", greedy)["text"]

        @sable.function
        def program(s):
            s += "a b c d" + sable.gen("out", max_tokens=6, temperature=0, ignore_eos=True,
                                       lora_path="a")

        assert program.run(backend=llm)["out"] == want
