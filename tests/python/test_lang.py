"""SGLang's frontend-language page (spec/sglang_docs/frontend_language.zh.txt) with `import sable
as sgl`, on the in-process Engine: the programs run unchanged; the checkpoint has random weights,
so the assertions are constraints (regex fullmatch, choice in the set, forks sharing the prefix
and the radix cache, token counts), not words."""

import contextlib
import io
import re

import pytest
import sable as sgl
from sable import (assistant, assistant_begin, assistant_end, function, gen, set_default_backend,
                   system, user)


@pytest.fixture(autouse=True)
def default_backend(engine):
    set_default_backend(engine)
    yield


def test_basic_qa_and_roles_from_the_chat_template(engine):
    @function
    def basic_qa(s, question):
        s += system(f"You are a helpful assistant than can answer questions.")
        s += user(question)
        s += assistant(gen("answer", max_tokens=12))

    state = basic_qa("List 3 countries and their capitals.")
    assert isinstance(state["answer"], str)
    assert state.get_meta_info("answer")["completion_tokens"] <= 12
    text = state.text()
    messages = state.messages()
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[2]["content"] == state["answer"]
    # The role markers are the model's chat template's: the text up to the answer is what the
    # template renders for the first two turns (then the assistant's opening).
    rendered = engine.tokenizer.apply_chat_template(messages[:2], tokenize=False)
    assert text.startswith(rendered + "<|im_start|>assistant\n")
    assert text.endswith(state["answer"] + "<|im_end|>\n")


def test_multi_turn_reuses_the_prefix():
    @function
    def multi_turn_qa(s):
        s += system(f"You are a helpful assistant than can answer questions.")
        s += user("Please give me a list of 3 countries and their capitals.")
        s += assistant(gen("first_answer", max_tokens=8))
        s += user("Please give me another list of 3 countries and their capitals.")
        s += assistant(gen("second_answer", max_tokens=8))
        return s

    state = multi_turn_qa()
    first = state.get_meta_info("first_answer")
    second = state.get_meta_info("second_answer")
    # The second turn's prompt starts with the whole first exchange: served from the cache.
    assert second["cached_tokens"] >= first["prompt_tokens"]
    assert state.ret_value is state


def test_control_flow_with_choices():
    @function
    def tool_use(s, question):
        s += assistant("To answer this question: " + question + ". I need to use a " +
                       gen("tool", choices=["calculator", "search engine"]) + ". ")
        if s["tool"] == "calculator":
            s += assistant("The math expression is: " + gen("expression", max_tokens=8))
        elif s["tool"] == "search engine":
            s += assistant("The key word to search is: " + gen("word", max_tokens=8))

    state = tool_use("What is 2 * 2?")
    assert state["tool"] in ("calculator", "search engine")
    follow = "expression" if state["tool"] == "calculator" else "word"
    assert isinstance(state[follow], str)
    meta = state.get_meta_info("tool")
    assert len(meta["normalized_prompt_logprobs"]) == 2
    assert state.text().startswith("<|im_start|>assistant\n")
    assert "What is 2 * 2?. I need to use a " + state["tool"] + ". <|im_end|>" in state.text()


def test_fork_branches_share_the_prefix_and_the_radix_cache():
    @function
    def tip_suggestion(s):
        s += assistant("Here are two tips for staying healthy: "
                       "1. Balanced Diet. 2. Regular Exercise.\n\n")
        forks = s.fork(2)
        for i, f in enumerate(forks):
            f += assistant(f"Now, expand tip {i+1} into a paragraph:\n" +
                           gen("detailed_tip", max_tokens=16, stop="\n\n"))
        s += assistant("Tip 1:" + forks[0]["detailed_tip"] + "\n")
        s += assistant("Tip 2:" + forks[1]["detailed_tip"] + "\n")
        s += assistant("To summarize the above two tips, I can say:\n" +
                       gen("summary", max_tokens=16))
        s["forks"] = forks

    state = tip_suggestion()
    forks = state["forks"]
    prefix = forks[0].text()[: forks[0].text().index("Now, expand tip 1")]
    assert forks[1].text().startswith(prefix)
    assert state.text().startswith(prefix)
    for f in forks:
        meta = f.get_meta_info("detailed_tip")
        assert meta["cached_tokens"] > 0, meta
        assert meta["completion_tokens"] <= 16
    assert "Tip 1:" + forks[0]["detailed_tip"] + "\n" in state.text()
    assert isinstance(state["summary"], str)


IP_REGEX = r"((25[0-5]|2[0-4]\d|[01]?\d\d?).){3}(25[0-5]|2[0-4]\d|[01]?\d\d?)"


def test_regex_constrained_gen():
    @function
    def regular_expression_gen(s):
        s += user("What is the IP address of the Google DNS servers?")
        s += assistant(gen("answer", temperature=0, regex=IP_REGEX))

    state = regular_expression_gen()
    assert re.fullmatch(IP_REGEX, state["answer"]), state["answer"]


def test_json_shaped_regex_gen():
    character_regex = (
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

    @function
    def character_gen(s, name):
        s += user(f"{name} is a character in Harry Potter. Please fill in the following "
                  f"information about this character.")
        s += assistant(gen("json_output", max_tokens=256, regex=character_regex))

    state = character_gen("Harry Potter")
    out = state["json_output"]
    assert re.fullmatch(character_regex, out), out
    meta = state.get_meta_info("json_output")
    assert meta["finish_reason"]["type"] == "stop"


def test_run_batch_with_a_progress_bar():
    @function
    def text_qa(s, question):
        s += user(question)
        s += assistant(gen("answer", stop="\n", max_tokens=8))

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        states = text_qa.run_batch(
            [{"question": "What is the capital of the United Kingdom?"},
             {"question": "What is the capital of France?"},
             {"question": "What is the capital of Japan?"}],
            progress_bar=True)
    assert len(states) == 3
    for state, country in zip(states, ["United Kingdom", "France", "Japan"]):
        assert country in state.text()
        assert "\n" not in state["answer"]
        assert state.get_meta_info("answer")["completion_tokens"] <= 8
    assert "3/3" in err.getvalue()


def test_streaming_text_iter():
    @function
    def text_qa(s, question):
        s += user(question)
        s += assistant(gen("answer", stop="\n", max_tokens=12))

    state = text_qa.run(question="What is the capital of France?", temperature=0.1, stream=True)
    pieces = list(state.text_iter())
    assert len(pieces) >= 3
    assert "".join(pieces) == state.text()
    assert state.text().startswith("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
                                   "<|im_start|>assistant\n")

    state = text_qa.run(question="Again?", temperature=0, stream=True)
    answer_pieces = list(state.text_iter("answer"))
    assert "".join(answer_pieces) == state["answer"]


def test_with_user_scope_and_assistant_begin():
    @function
    def chat_example(s):
        s += system("You are a helpful assistant.")
        with s.user():
            s += "Question: What is the capital of France?"
        s += assistant_begin()
        s += "Answer: " + gen("answer", max_tokens=10, stop="\n")
        s += assistant_end()

    state = chat_example()
    assert state.messages() == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Question: What is the capital of France?"},
        {"role": "assistant", "content": "Answer: " + state["answer"]},
    ]
    assert "\n" not in state["answer"]


def test_select_and_gen_int():
    @function
    def pick(s):
        s += "Pick one: " + sgl.select("color", choices=["red", "green", "blue"])
        s += " and a number: " + sgl.gen_int("number", max_tokens=6)

    state = pick.run(backend=sgl.get_default_backend())
    assert state["color"] in ("red", "green", "blue")
    assert re.fullmatch(r"[-+]?[0-9]+", state["number"])


def test_default_system_turn_of_a_template_comes_first():
    # A ChatML template that adds "You are a helpful assistant." when no system turn leads (as
    # Qwen2.5's does): the derived roles carry it, and a program starting with user gets it.
    from sable.lang.roles import roles_from_template

    def render(messages):
        out = ""
        if messages[0]["role"] != "system":
            out += "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        for m in messages:
            out += f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n"
        return out

    roles = roles_from_template(render)
    assert roles.default_system == "You are a helpful assistant."
    assert roles.prefix["user"] == "<|im_start|>user\n" and roles.suffix["user"] == "<|im_end|>\n"

    from sable.lang.interpreter import ProgramState, StreamExecutor
    state = ProgramState(StreamExecutor(None, roles, {}, False))
    state += user("Hi")
    assert state.text() == render([{"role": "user", "content": "Hi"}])
    assert state.messages()[0] == {"role": "system", "content": "You are a helpful assistant."}
