"""Images through the in-process sable.Engine and the frontend language on the tiny random-weight
Qwen2.5-VL of tests/golden/vl (tokenizer: tests/golden/models/qwen2_tok): Engine.generate's
image_data gives transformers' 24 greedy tokens (scripts/make_vl_golden.py), a batch takes one
image list per prompt, and a program with image() sends the image (a local file as base64) with
the model's placeholder, matching the same prompt sent to generate directly."""

import json
import os

import pytest
import sable

from conftest import ENGINE_ARGS, MODELS, SOURCE_DIR

VL_DIR = os.path.join(SOURCE_DIR, "tests", "golden", "vl")
SYSTEM = "You are a helpful assistant."
GREEDY = {"temperature": 0, "max_new_tokens": 24, "ignore_eos": True}


def golden():
    with open(os.path.join(VL_DIR, "golden.json")) as f:
        return json.load(f)


def image(name):
    return os.path.join(VL_DIR, golden()["images"][name]["file"])


def prompt(user):
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            "<|im_start|>assistant\n")


PAD = "<|vision_start|><|image_pad|><|vision_end|>"


@pytest.fixture(scope="module")
def vl_engine():
    llm = sable.Engine(model_path=os.path.join(VL_DIR, "model"),
                       tokenizer_path=os.path.join(MODELS, "qwen2_tok"), **ENGINE_ARGS)
    yield llm
    llm.shutdown()


def test_engine_image_data_gives_the_golden_tokens(vl_engine):
    cases = golden()["cases"]
    out = vl_engine.generate(prompt(PAD + "Describe this image."), GREEDY, image_data=image("a"))
    assert out["output_ids"] == cases[0]["greedy"]
    texts = [prompt(PAD + "Describe this image."),
             prompt("Picture 1: " + PAD + "Picture 2: " + PAD + "Which one is brighter?")]
    outs = vl_engine.generate(texts, GREEDY, image_data=[[image("a")], [image("b"), image("c")]])
    assert [o["output_ids"] for o in outs] == [cases[0]["greedy"], cases[1]["greedy"]]
    assert vl_engine.get_model_info()["has_image_understanding"] is True


def test_engine_image_errors_are_value_errors(vl_engine):
    with pytest.raises(ValueError, match="image_data"):
        vl_engine.generate(prompt(PAD + "x"), {"max_new_tokens": 1}, image_data="/no/such.png")
    with pytest.raises(ValueError, match="placeholder"):
        vl_engine.generate(prompt("no image here"), {"max_new_tokens": 1}, image_data=image("a"))


def test_program_with_image_matches_generate(vl_engine):
    @sable.function
    def describe(s, path):
        s += sable.system(SYSTEM)
        s += sable.user(sable.image(path) + "Describe this image.")
        s += sable.assistant(sable.gen("answer", max_tokens=24, temperature=0, ignore_eos=True))

    state = describe.run(path=image("a"), backend=vl_engine)
    # The roles come from the tokenizer's chat template (Qwen3's: its assistant turn opens with
    # an empty think block), so the reference prompt is the program's own text before the answer.
    text = state.text()
    prompt_text = text[:text.rindex(state["answer"])]
    assert PAD + "Describe this image." in prompt_text
    expected = vl_engine.generate(prompt_text, GREEDY, image_data=image("a"))
    assert state["answer"] == expected["text"]
    assert state.get_meta_info("answer")["prompt_tokens"] == expected["meta_info"]["prompt_tokens"]
    with open(image("a"), "rb") as f:  # bytes work as well as a path
        assert describe.run(path=f.read(), backend=vl_engine)["answer"] == expected["text"]
