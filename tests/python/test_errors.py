"""Bad input from Python raises a clear exception (TypeError for wrong types and unknown keywords,
ValueError with the core's message for bad values, RuntimeError for a broken model or a closed
engine), never a crash or a hang."""

import os

import pytest
import sable

from conftest import ENGINE_ARGS, MODEL_DIR


def test_unknown_keyword_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_tokens_total'"):
        sable.Engine(model_path=MODEL_DIR, max_tokens_total=5)


def test_bad_option_values_are_value_errors_with_the_core_message():
    with pytest.raises(ValueError, match=r"'port': expected an integer from 1 to 65535, got 0"):
        sable.Engine(model_path=MODEL_DIR, port=0)
    with pytest.raises(ValueError, match=r"'schedule_policy': expected one of fcfs, lpm"):
        sable.Engine(model_path=MODEL_DIR, schedule_policy="fastest")
    with pytest.raises(ValueError, match="impl"):
        sable.Engine(model_path=MODEL_DIR, impl="magic")
    with pytest.raises(TypeError, match=r"tp_size=...\): expected integer, got list"):
        sable.Engine(model_path=MODEL_DIR, tp_size=[1])
    with pytest.raises(ValueError, match="model_path is required"):
        sable.Engine(device="cpu")


def copy_model(tmp_path, edit_config):
    """qwen2_tok's tokenizer and weights with config.json replaced by edit_config(text)."""
    for name in os.listdir(MODEL_DIR):
        src = os.path.join(MODEL_DIR, name)
        if name == "config.json":
            (tmp_path / name).write_text(edit_config(open(src).read()))
        else:
            os.symlink(src, tmp_path / name)
    return str(tmp_path)


def test_broken_model_paths_raise_naming_the_path(tmp_path):
    with pytest.raises(RuntimeError, match="no-such-model"):
        sable.Engine(model_path=str(tmp_path / "no-such-model"), **ENGINE_ARGS)
    broken = copy_model(tmp_path, lambda text: "{not json")
    with pytest.raises(RuntimeError, match="config.json"):
        sable.Engine(model_path=broken, **ENGINE_ARGS)


def test_impl_native_without_a_native_plugin_names_the_architecture(tmp_path):
    unknown = copy_model(tmp_path, lambda text: text.replace("Qwen2ForCausalLM",
                                                             "FancyForCausalLM"))
    with pytest.raises(RuntimeError, match="FancyForCausalLM"):
        sable.Engine(model_path=unknown, impl="native", **ENGINE_ARGS)


def test_wrong_argument_types(engine):
    with pytest.raises(TypeError, match="prompt must be a str or a list of str"):
        engine.generate(42)
    with pytest.raises(TypeError, match="sampling_params must be a dict"):
        engine.generate("x", "temperature=0")
    with pytest.raises(TypeError, match="input_ids must be a list of int"):
        engine.generate(input_ids=["a"])
    with pytest.raises(TypeError, match="stream must be a bool"):
        engine.generate("x", stream="yes")
    with pytest.raises(ValueError, match="either prompt"):
        engine.generate()


def test_bad_values_name_the_field(engine):
    with pytest.raises(ValueError, match="temperature"):
        engine.generate("x", {"temperature": -1})
    with pytest.raises(ValueError, match="max_new_tokens"):
        engine.generate("x", {"max_new_tokens": -5})
    with pytest.raises(ValueError, match="input_ids has token id"):
        engine.generate(input_ids=[1, 10**9])
    with pytest.raises(ValueError, match="image_data"):
        engine.generate("x", image_data="cat.png")
    with pytest.raises(ValueError, match="regex"):
        engine.generate("x", {"regex": "(unclosed"})
    with pytest.raises(ValueError, match="sampling_params"):
        engine.generate(["a", "b"], [{"max_new_tokens": 1}])
    with pytest.raises(ValueError):
        engine.generate("x", {"no_such_param": 1})
    # The engine still serves after all that.
    assert engine.generate("x", {"max_new_tokens": 1})["meta_info"]["completion_tokens"] == 1


def test_too_long_prompt(engine):
    with pytest.raises(ValueError, match="context length"):
        engine.generate(input_ids=[1] * 5000, sampling_params={"max_new_tokens": 1})


def test_errors_in_async_calls(engine):
    import asyncio

    async def main():
        with pytest.raises(ValueError, match="temperature"):
            await engine.async_generate("x", {"temperature": -1})
        with pytest.raises(TypeError):
            await engine.async_generate(3.5)

    asyncio.run(main())


def test_generation_after_shutdown_in_async():
    import asyncio
    llm = sable.Engine(model_path=MODEL_DIR, **ENGINE_ARGS)
    llm.shutdown()

    async def main():
        with pytest.raises(RuntimeError, match="has been shut down"):
            await llm.async_generate("x")

    asyncio.run(main())


def test_lang_errors(engine):
    @sable.function
    def with_image(s):
        s += sable.user(sable.image("cat.png") + "What is this?")
        s += sable.assistant(sable.gen("answer", max_tokens=4))

    # A text model: the image travels as image_data and the server names the problem.
    with pytest.raises(ValueError, match="takes no image input"):
        with_image.run(backend=engine)

    @sable.function
    def with_video(s):
        s += sable.user(sable.video("clip.mp4") + "What happens?")

    with pytest.raises(NotImplementedError, match="video input is not supported"):
        with_video.run(backend=engine)

    @sable.function
    def bad_regex(s):
        s += "Say: " + sable.gen("x", regex="(unclosed", max_tokens=4)

    with pytest.raises(ValueError, match="regex"):
        bad_regex.run(backend=engine)
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_tokenz'"):
        sable.gen("x", max_tokenz=3)
    with pytest.raises(TypeError, match="choices"):
        sable.select("x", choices=[])
    with pytest.raises(TypeError, match="backend is a sable.Engine"):
        bad_regex.run(backend="http://nowhere")
    with pytest.raises(ConnectionError, match="cannot reach"):
        sable.RuntimeEndpoint("http://127.0.0.1:1")
