"""SGLang's offline-engine page (spec/sglang_docs/offline_engine.en.txt), run with `import sable as
sgl` and the test checkpoint, plus the shapes the page relies on: the same dicts as /generate,
cumulative stream chunks merged once by stream_and_merge, async under asyncio.run and nest_asyncio,
and concurrent requests batched together."""

import asyncio
import io
import contextlib
import json

import sable as sgl
from sable.utils import async_stream_and_merge, stream_and_merge

from conftest import ENGINE_ARGS, MODEL_DIR


def test_offline_engine_doc_program_runs_unchanged():
    # The page's program; only the import line and the model path differ.
    llm = sgl.Engine(model_path=MODEL_DIR, **ENGINE_ARGS)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        prompts = ["Hello, my name is", "The president of the United States is",
                   "The capital of France is", "The future of AI is"]
        sampling_params = {"temperature": 0.8, "top_p": 0.95, "max_new_tokens": 16}
        outputs = llm.generate(prompts, sampling_params)
        for prompt, output in zip(prompts, outputs):
            print(f"Prompt: {prompt}\nGenerated text: {output['text']}")
        for prompt in prompts[:2]:
            merged = stream_and_merge(llm, prompt, {"temperature": 0.2, "top_p": 0.9,
                                                    "max_new_tokens": 16})
            print("Generated text:", merged)

        async def main():
            outs = await llm.async_generate(prompts, sampling_params)
            for prompt, output in zip(prompts, outs):
                print(f"Prompt: {prompt}\nGenerated text: {output['text']}")

        asyncio.run(main())

        async def main_stream():
            for prompt in prompts[:2]:
                async for cleaned_chunk in async_stream_and_merge(llm, prompt, sampling_params):
                    print(cleaned_chunk, end="", flush=True)
                print()

        asyncio.run(main_stream())
    llm.shutdown()
    assert len(outputs) == 4
    for o in outputs:
        assert set(o) >= {"text", "output_ids", "meta_info"}
        assert o["meta_info"]["completion_tokens"] == len(o["output_ids"]) <= 16
        assert o["meta_info"]["finish_reason"]["type"] in ("length", "stop")
    assert out.getvalue().count("Generated text:") == 4 + 2 + 4


def test_generate_single_prompt_returns_dict_with_counts(engine):
    out = engine.generate("The capital of France is",
                          {"temperature": 0, "max_new_tokens": 8, "ignore_eos": True})
    assert isinstance(out, dict)
    meta = out["meta_info"]
    assert meta["completion_tokens"] == 8 == len(out["output_ids"])
    assert meta["prompt_tokens"] == len(engine.tokenizer.encode("The capital of France is"))
    assert meta["finish_reason"] == {"type": "length", "length": 8}
    assert out["text"] == engine.tokenizer.decode(out["output_ids"])


def test_input_ids_and_logprobs(engine):
    ids = engine.tokenizer.encode("one two three four")
    out = engine.generate(input_ids=ids, sampling_params={"temperature": 0, "max_new_tokens": 4,
                                                          "ignore_eos": True},
                          return_logprob=True, top_logprobs_num=2, logprob_start_len=0)
    meta = out["meta_info"]
    assert len(meta["output_token_logprobs"]) == 4
    assert len(meta["input_token_logprobs"]) == len(ids)
    assert all(len(top) == 2 for top in meta["output_top_logprobs"])
    # Greedy: the chosen token is the best of the top list.
    for chosen, top in zip(meta["output_token_logprobs"], meta["output_top_logprobs"]):
        assert chosen[1] == top[0][1]


def test_stream_chunks_are_cumulative_and_merge_once(engine):
    params = {"temperature": 0, "max_new_tokens": 12, "ignore_eos": True}
    whole = engine.generate("Stream me", params)
    chunks = list(engine.generate("Stream me", params, stream=True))
    assert len(chunks) >= 2
    for a, b in zip(chunks, chunks[1:]):
        assert b["text"].startswith(a["text"])
        assert len(b["output_ids"]) >= len(a["output_ids"])
    assert chunks[-1]["text"] == whole["text"]
    assert chunks[-1]["output_ids"] == whole["output_ids"]
    assert chunks[-1]["meta_info"]["finish_reason"]["type"] == "length"
    assert stream_and_merge(engine, "Stream me", params) == whole["text"]


def test_incremental_streaming_output_engine():
    llm = sgl.Engine(model_path=MODEL_DIR, incremental_streaming_output=True, **ENGINE_ARGS)
    try:
        params = {"temperature": 0, "max_new_tokens": 10, "ignore_eos": True}
        whole = llm.generate("Pieces", params)
        chunks = list(llm.generate("Pieces", params, stream=True))
        assert "".join(c["text"] for c in chunks) == whole["text"]
        assert sum((c["output_ids"] for c in chunks), []) == whole["output_ids"]
    finally:
        llm.shutdown()


def test_batch_stream_chunks_carry_index(engine):
    params = {"temperature": 0, "max_new_tokens": 5, "ignore_eos": True}
    chunks = list(engine.generate(["a", "b c"], params, stream=True))
    assert {c["index"] for c in chunks} == {0, 1}
    finals = {c["index"]: c for c in chunks if c["meta_info"]["finish_reason"]}
    assert all(len(c["output_ids"]) == 5 for c in finals.values())


def test_async_generate_stream_is_async_iterator(engine):
    async def main():
        gen = await engine.async_generate("Async", {"temperature": 0, "max_new_tokens": 6,
                                                    "ignore_eos": True}, stream=True)
        return [c async for c in gen]

    chunks = asyncio.run(main())
    assert chunks[-1]["meta_info"]["completion_tokens"] == 6
    for a, b in zip(chunks, chunks[1:]):
        assert b["text"].startswith(a["text"])


def test_async_inside_running_loop_with_nest_asyncio(engine):
    import nest_asyncio

    async def outer():
        loop = asyncio.get_running_loop()
        nest_asyncio.apply(loop)
        # What a notebook cell does: run_until_complete inside the running loop.
        return loop.run_until_complete(
            engine.async_generate("Nested", {"temperature": 0, "max_new_tokens": 3,
                                             "ignore_eos": True}))

    out = asyncio.new_event_loop().run_until_complete(outer())
    assert out["meta_info"]["completion_tokens"] == 3


def test_32_concurrent_async_requests_share_decode_steps(engine):
    info = engine.get_server_info()["internal_states"][0]
    steps_before = info["forward_steps_total"]
    new_tokens = 16

    async def main():
        return await asyncio.gather(*[
            engine.async_generate(f"request {i}", {"temperature": 0, "max_new_tokens": new_tokens,
                                                   "ignore_eos": True}) for i in range(32)])

    outs = asyncio.run(main())
    assert all(o["meta_info"]["completion_tokens"] == new_tokens for o in outs)
    info = engine.get_server_info()["internal_states"][0]
    steps = info["forward_steps_total"] - steps_before
    # Alone, 32 requests x 16 tokens would take 512 steps; batched, about 16 plus prefills.
    assert steps <= 4 * new_tokens, steps
    assert info["max_batch_size"] >= 16


def test_results_are_json_round_trippable(engine):
    out = engine.generate("x", {"temperature": 0, "max_new_tokens": 2})
    assert json.loads(json.dumps(out)) == out
