"""The real `sglang` frontend language against `sable serve`: the programs of SGLang's frontend
docs (spec/sglang_docs/frontend_language*.txt), unmodified apart from smaller max_tokens.

Import note: `import sglang` (the top-level package) pulls in torch through its __init__, so this
suite imports `sglang.lang.api` and `sglang.lang.backend.runtime_endpoint` directly. Python runs a
package's __init__ before any submodule, so the package is first registered as a bare module
whose __path__ is the installed folder (found with importlib.util.find_spec, which does not run
it); the submodules then load on their own, needing only what scripts/install-deps.sh installs
(the sglang wheel with --no-deps, numpy, aiohttp, msgspec, pybase64, IPython, tqdm, pydantic).

The model is the golden qwen2_tok checkpoint (random weights, real tokenizer): its text is noise, so
the assertions check protocol and constraints (regex fullmatch, choices, stop strings, token counts,
logprob shapes), never content.
"""
import importlib.util
import re
import sys
import types

import pytest


def import_sglang_frontend():
    spec = importlib.util.find_spec("sglang")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the sglang wheel is not installed (scripts/install-deps.sh installs it)",
                    allow_module_level=True)
    if "sglang" not in sys.modules:
        package = types.ModuleType("sglang")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec  # so that later find_spec("sglang") calls still work
        sys.modules["sglang"] = package
    import sglang.lang.api as api
    from sglang.lang.backend.runtime_endpoint import RuntimeEndpoint
    assert "torch" not in sys.modules
    return api, RuntimeEndpoint


sgl, RuntimeEndpoint = import_sglang_frontend()
function, gen, select = sgl.function, sgl.gen, sgl.select
system, user, assistant = sgl.system, sgl.user, sgl.assistant
assistant_begin, assistant_end = sgl.assistant_begin, sgl.assistant_end

IP_REGEX = r"((25[0-5]|2[0-4]\d|[01]?\d\d?).){3}(25[0-5]|2[0-4]\d|[01]?\d\d?)"
CHARACTER_REGEX = (
    r"""\{\n"""
    + r"""    "name": "[\w\d\s]{1,16}",\n"""
    + r"""    "house": "(Gryffindor|Slytherin|Ravenclaw|Hufflepuff)",\n"""
    + r"""    "blood status": "(Pure-blood|Half-blood|Muggle-born)",\n"""
    + r"""    "occupation": "(student|teacher|auror|ministry of magic|death eater|order of the phoenix)",\n"""
    + r"""    "wand": \{\n"""
    + r"""        "wood": "[\w\d\s]{1,16}",\n"""
    + r"""        "core": "[\w\d\s]{1,16}",\n"""
    + r"""        "length": [0-9]{1,2}\.[0-9]{0,2}\n"""
    + r"""    \},\n"""
    + r"""    "alive": "(Alive|Deceased)",\n"""
    + r"""    "patronus": "[\w\d\s]{1,16}",\n"""
    + r"""    "bogart": "[\w\d\s]{1,16}"\n"""
    + r"""\}"""
)


@pytest.fixture(scope="module")
def backend(server):
    endpoint = RuntimeEndpoint(server.url)
    sgl.set_default_backend(endpoint)
    return endpoint


def finished(state):
    """Waits for the program and fails with its error, if any (the frontend only stores it)."""
    assert state.error() is None, state.error()
    return state


def completion_tokens(state, name):
    return state.get_meta_info(name)["completion_tokens"]


def test_server_info_and_cache_through_the_frontend(backend):
    info = sgl.get_server_info()  # GET /server_info: the route of issue 11 item 1
    assert info["max_total_num_tokens"] > 0
    sgl.flush_cache()  # POST /flush_cache
    assert backend.get_model_name().endswith("qwen2_tok")


def test_basic_qa(backend):
    @function
    def basic_qa(s, question):
        s += system("You are a helpful assistant than can answer questions.")
        s += user(question)
        s += assistant(gen("answer", max_tokens=8))

    state = finished(basic_qa("List 3 countries and their capitals."))
    assert isinstance(state["answer"], str)
    assert 1 <= completion_tokens(state, "answer") <= 8
    assert [m["role"] for m in state.messages()] == ["system", "user", "assistant"]
    assert state.messages()[-1]["content"] == state["answer"].lstrip()  # the frontend lstrips


def test_multi_turn(backend):
    @function
    def multi_turn_qa(s):
        s += system("You are a helpful assistant than can answer questions.")
        s += user("Please give me a list of 3 countries and their capitals.")
        s += assistant(gen("first_answer", max_tokens=6))
        s += user("Please give me another list of 3 countries and their capitals.")
        s += assistant(gen("second_answer", max_tokens=6))

    state = finished(multi_turn_qa())
    roles = [m["role"] for m in state.messages()]
    assert roles == ["system", "user", "assistant", "user", "assistant"]
    assert state.messages()[2]["content"] == state["first_answer"].lstrip()
    assert state.messages()[4]["content"] == state["second_answer"].lstrip()
    # The second turn's prompt is the whole conversation so far.
    assert state["first_answer"] in state.text()


def test_choices_with_branching(backend):
    @function
    def tool_use(s, question):
        s += assistant(
            "To answer this question: "
            + question
            + ". I need to use a "
            + gen("tool", choices=["calculator", "search engine"])
            + ". "
        )
        if s["tool"] == "calculator":
            s += assistant("The math expression is: " + gen("expression", max_tokens=6))
        elif s["tool"] == "search engine":
            s += assistant("The key word to search is: " + gen("word", max_tokens=6))

    state = finished(tool_use("What is 2 * 2?"))
    assert state["tool"] in ("calculator", "search engine")
    branch = "expression" if state["tool"] == "calculator" else "word"
    assert 1 <= completion_tokens(state, branch) <= 6


def test_select(backend):
    @function
    def yes_no(s, question):
        s += user(question)
        s += assistant("Answer: " + select("answer", choices=["yes", "no", "maybe not"]))

    state = finished(yes_no("Is Paris in France?"))
    assert state["answer"] in ("yes", "no", "maybe not")
    assert state.messages()[-1]["content"] == "Answer: " + state["answer"]


def test_fork(backend):
    @function
    def tip_suggestion(s):
        s += assistant(
            "Here are two tips for staying healthy: "
            "1. Balanced Diet. 2. Regular Exercise.\n\n"
        )
        forks = s.fork(2)
        for i, f in enumerate(forks):
            f += assistant(
                f"Now, expand tip {i+1} into a paragraph:\n"
                + gen("detailed_tip", max_tokens=8, stop="\n\n")
            )
        s += assistant("Tip 1:" + forks[0]["detailed_tip"] + "\n")
        s += assistant("Tip 2:" + forks[1]["detailed_tip"] + "\n")
        s += assistant("To summarize the above two tips, I can say:\n" + gen("summary", max_tokens=8))

    state = finished(tip_suggestion())
    text = state.text()
    assert "Tip 1:" in text and "Tip 2:" in text
    assert isinstance(state["summary"], str)
    assert 1 <= completion_tokens(state, "summary") <= 8


def test_regex(backend):
    @function
    def regular_expression_gen(s):
        s += user("What is the IP address of the Google DNS servers?")
        s += assistant(gen("answer", temperature=0, max_tokens=64, regex=IP_REGEX))

    state = finished(regular_expression_gen())
    assert re.fullmatch(IP_REGEX, state["answer"]), state["answer"]


def test_json_shaped_regex(backend):
    @function
    def character_gen(s, name):
        s += user(f"{name} is a character in Harry Potter. Please fill in the following "
                  "information about this character.")
        s += assistant(gen("json_output", max_tokens=400, regex=CHARACTER_REGEX))

    state = finished(character_gen("Harry Potter"))
    assert re.fullmatch(CHARACTER_REGEX, state["json_output"]), state["json_output"]


@function
def text_qa(s, question):
    s += user(question)
    s += assistant(gen("answer", stop="\n", max_tokens=12))


def test_run_batch(backend):
    states = text_qa.run_batch(
        [{"question": "What is the capital of the United Kingdom?"},
         {"question": "What is the capital of France?"},
         {"question": "What is the capital of Japan?"}],
        progress_bar=False,
    )
    assert len(states) == 3
    for state in states:
        finished(state)
        assert "\n" not in state["answer"]  # the stop string ends (and is trimmed from) the answer
        assert completion_tokens(state, "answer") <= 12


def test_streaming_text_iter(backend):
    state = text_qa.run(question="What is the capital of France?", temperature=0.1, stream=True)
    pieces = list(state.text_iter())
    finished(state)
    assert len(pieces) >= 2  # the prompt, then at least one piece of the answer
    assert "".join(pieces) == state.text()
    assert state.messages()[-1]["content"] == state["answer"].lstrip()  # the frontend lstrips
    streamed = list(text_qa.run(question="Hi?", stream=True).text_iter("answer"))
    assert "\n" not in "".join(streamed)


def test_with_user_and_assistant_begin(backend):
    @function
    def chat_example(s):
        s += system("You are a helpful assistant.")
        with s.user():
            s += "Question: What is the capital of France?"
        s += assistant_begin()
        s += "Answer: " + gen("answer", max_tokens=10, stop="\n")
        s += assistant_end()

    state = finished(chat_example())
    roles = [m["role"] for m in state.messages()]
    assert roles == ["system", "user", "assistant"]
    assert state.messages()[1]["content"] == "Question: What is the capital of France?"
    assert state.messages()[2]["content"] == "Answer: " + state["answer"]
    assert "\n" not in state["answer"]


def test_return_logprob(backend):
    @function
    def scored(s):
        s += user("Name a color.")
        s += assistant(gen("answer", max_tokens=4, return_logprob=True, logprob_start_len=0,
                           top_logprobs_num=2, return_text_in_logprobs=True))

    state = finished(scored())
    meta = state.get_meta_info("answer")
    out = meta["output_token_logprobs"]
    assert len(out) == meta["completion_tokens"] >= 1
    assert all(lp <= 0 and isinstance(tok, int) and isinstance(text, str) for lp, tok, text in out)
    prompt = meta["input_token_logprobs"]
    assert len(prompt) == meta["prompt_tokens"]
    assert prompt[0][0] is None and all(lp <= 0 for lp, _, _ in prompt[1:])
    assert all(len(top) == 2 for top in meta["output_top_logprobs"])


@pytest.fixture(scope="module")
def vl_server():
    """The tiny random-weight Qwen2.5-VL of tests/golden/vl with the real Qwen tokenizer."""
    import os
    from conftest import SOURCE_DIR, Server
    golden = os.path.join(SOURCE_DIR, "tests", "golden")
    s = Server("--tokenizer-path", os.path.join(golden, "models", "qwen2_tok"),
               "--skip-server-warmup", model_dir=os.path.join(golden, "vl", "model"),
               model_name="qwen_vl")
    yield s
    s.stop()


def test_image_through_the_frontend(vl_server):
    """sgl.image(path): the frontend sends the file as base64 image_data and writes its chat
    template's image token (qwen2-vl: <|vision_start|><|image_pad|><|vision_end|>), which the
    server expands; the answer equals /generate's for the same prompt and image."""
    import os
    import requests
    from conftest import SOURCE_DIR
    path = os.path.join(SOURCE_DIR, "tests", "golden", "vl", "image_a.png")
    endpoint = RuntimeEndpoint(vl_server.url, chat_template_name="qwen2-vl")

    @function
    def describe(s, image_path):
        s += user(sgl.image(image_path) + "Describe this image.")
        s += assistant(gen("answer", max_tokens=24, temperature=0, ignore_eos=True))

    state = finished(describe.run(image_path=path, backend=endpoint))
    text = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
            "<|vision_start|><|image_pad|><|vision_end|>Describe this image.<|im_end|>\n"
            "<|im_start|>assistant\n")
    expected = requests.post(vl_server.url + "/generate", json={
        "text": text, "image_data": path,
        "sampling_params": {"temperature": 0, "max_new_tokens": 24, "ignore_eos": True}}).json()
    assert state["answer"] == expected["text"]
    assert completion_tokens(state, "answer") == 24
