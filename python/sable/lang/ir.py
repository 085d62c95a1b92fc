"""The expressions of SGLang's frontend language: what `s += ...` accepts.

Text, gen(...), select(...), roles (system/user/assistant and their _begin/_end) and image(...)
build small expression objects; `+` between them (or with str) makes a list that runs in order.
The interpreter (interpreter.py) executes them against a backend.
"""

from __future__ import annotations

import base64
import io
import os

from typing import Any, Optional, Union

from sable.lang.choices import ChoicesMethod, choices_method_of


class SglExpr:
    def __add__(self, other: Any) -> "SglExprList":
        return SglExprList([self, _expr(other)])

    def __radd__(self, other: Any) -> "SglExprList":
        return SglExprList([_expr(other), self])


def _expr(value: Any) -> SglExpr:
    if isinstance(value, SglExpr):
        return value
    if isinstance(value, str):
        return SglConstantText(value)
    raise TypeError(f"cannot add a {type(value).__name__} to a prompt: use str, gen(), select(), "
                    f"a role or image()")


class SglExprList(SglExpr):
    def __init__(self, items: list[SglExpr]) -> None:
        self.items: list[SglExpr] = []
        for item in items:
            self.items.extend(item.items if isinstance(item, SglExprList) else [item])

    def __add__(self, other: Any) -> "SglExprList":
        return SglExprList(self.items + [_expr(other)])

    def __radd__(self, other: Any) -> "SglExprList":
        return SglExprList([_expr(other)] + self.items)


class SglConstantText(SglExpr):
    def __init__(self, value: str) -> None:
        self.value = value


class SglRoleBegin(SglExpr):
    def __init__(self, role: str) -> None:
        self.role = role


class SglRoleEnd(SglExpr):
    def __init__(self, role: str) -> None:
        self.role = role


class SglImage(SglExpr):
    def __init__(self, path: Any) -> None:
        self.path = path


class SglVideo(SglExpr):
    def __init__(self, path: Any, num_frames: int) -> None:
        self.path = path
        self.num_frames = num_frames


# Sampling keywords of gen(), mapped to /generate's sampling_params names.
_SAMPLING_KEYS = {
    "max_tokens": "max_new_tokens", "max_new_tokens": "max_new_tokens",
    "min_tokens": "min_new_tokens", "stop": "stop", "stop_token_ids": "stop_token_ids",
    "temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "min_p": "min_p",
    "frequency_penalty": "frequency_penalty", "presence_penalty": "presence_penalty",
    "repetition_penalty": "repetition_penalty", "ignore_eos": "ignore_eos", "n": "n",
    "regex": "regex", "json_schema": "json_schema", "ebnf": "ebnf",
    "no_stop_trim": "no_stop_trim", "skip_special_tokens": "skip_special_tokens",
    "spaces_between_special_tokens": "spaces_between_special_tokens",
}
_LOGPROB_KEYS = ("return_logprob", "logprob_start_len", "top_logprobs_num",
                 "return_text_in_logprobs")


class SglGen(SglExpr):
    """gen(name, ...): sample text into variable `name`."""

    def __init__(self, name: Optional[str], sampling: dict, logprob: dict) -> None:
        self.name = name
        self.sampling = sampling  # sampling_params given here (None values dropped)
        self.logprob = logprob  # the request's other fields: logprob options, lora_path


class SglSelect(SglExpr):
    """select(name, choices): the most likely of `choices` (length-normalised log-probability)."""

    def __init__(self, name: Optional[str], choices: list[str], temperature: float,
                 choices_method: ChoicesMethod) -> None:
        self.name = name
        self.choices = choices
        self.temperature = temperature
        self.choices_method = choices_method


def gen(
    name: Optional[str] = None,
    max_tokens: Optional[int] = None,
    min_tokens: Optional[int] = None,
    n: Optional[int] = None,
    stop: Optional[Union[str, list[str]]] = None,
    stop_token_ids: Optional[list[int]] = None,
    temperature: Optional[float] = None,
    top_p: Optional[float] = None,
    top_k: Optional[int] = None,
    min_p: Optional[float] = None,
    frequency_penalty: Optional[float] = None,
    presence_penalty: Optional[float] = None,
    ignore_eos: Optional[bool] = None,
    return_logprob: Optional[bool] = None,
    logprob_start_len: Optional[int] = None,
    top_logprobs_num: Optional[int] = None,
    return_text_in_logprobs: Optional[bool] = None,
    dtype: Optional[type] = None,
    choices: Optional[list[str]] = None,
    choices_method: Any = None,
    regex: Optional[str] = None,
    json_schema: Optional[Union[str, dict]] = None,
    lora_path: Optional[str] = None,
    **more_sampling: Any,
) -> SglExpr:
    """Generates text into variable `name` (SGLang's sgl.gen). With choices it is select().
    lora_path names a LoRA adapter the server has loaded; the generation runs with it."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"gen(name=...) must be a str, got {type(name).__name__}")
    if choices is not None:
        return select(name, choices, temperature=temperature or 0.0,
                      choices_method=choices_method)
    if dtype is not None:
        if regex is not None:
            raise ValueError("gen(): give dtype or regex, not both")
        if dtype is int:
            regex = r"[-+]?[0-9]+"
        elif dtype is str:
            regex = r'"[^"\n]*"'
        else:
            raise ValueError(f"gen(dtype=...) supports int and str, got {dtype!r}")
    if isinstance(json_schema, dict):
        import json
        json_schema = json.dumps(json_schema)
    given = dict(max_tokens=max_tokens, min_tokens=min_tokens, n=n, stop=stop,
                 stop_token_ids=stop_token_ids, temperature=temperature, top_p=top_p,
                 top_k=top_k, min_p=min_p, frequency_penalty=frequency_penalty,
                 presence_penalty=presence_penalty, ignore_eos=ignore_eos, regex=regex,
                 json_schema=json_schema, **more_sampling)
    sampling = {}
    for key, value in given.items():
        if key not in _SAMPLING_KEYS:
            raise TypeError(f"gen() got an unexpected keyword argument '{key}'")
        if value is not None:
            sampling[_SAMPLING_KEYS[key]] = value
    logprob = {k: v for k, v in dict(
        return_logprob=return_logprob, logprob_start_len=logprob_start_len,
        top_logprobs_num=top_logprobs_num,
        return_text_in_logprobs=return_text_in_logprobs, lora_path=lora_path).items()
        if v is not None}
    return SglGen(name, sampling, logprob)


def gen_int(name: Optional[str] = None, **kwargs: Any) -> SglExpr:
    return gen(name, dtype=int, **kwargs)


def gen_string(name: Optional[str] = None, **kwargs: Any) -> SglExpr:
    return gen(name, dtype=str, **kwargs)


def select(name: Optional[str] = None, choices: Optional[list[str]] = None,
           temperature: float = 0.0, choices_method: Any = None) -> SglExpr:
    if not isinstance(choices, (list, tuple)) or not choices or not all(
            isinstance(c, str) for c in choices):
        raise TypeError("select() needs choices: a non-empty list of str")
    return SglSelect(name, list(choices), temperature, choices_method_of(choices_method))


def _role(role: str, expr: Any = None) -> SglExpr:
    if expr is None:
        return SglExprList([SglRoleBegin(role), SglRoleEnd(role)])
    return SglExprList([SglRoleBegin(role), _expr(expr), SglRoleEnd(role)])


def system(expr: Any = None) -> SglExpr:
    return _role("system", expr)


def user(expr: Any = None) -> SglExpr:
    return _role("user", expr)


def assistant(expr: Any = None) -> SglExpr:
    return _role("assistant", expr)


def system_begin() -> SglExpr:
    return SglRoleBegin("system")


def system_end() -> SglExpr:
    return SglRoleEnd("system")


def user_begin() -> SglExpr:
    return SglRoleBegin("user")


def user_end() -> SglExpr:
    return SglRoleEnd("user")


def assistant_begin() -> SglExpr:
    return SglRoleBegin("assistant")


def assistant_end() -> SglExpr:
    return SglRoleEnd("assistant")


def image(path: Any) -> SglExpr:
    """An image in the prompt (a vision-language model): a local file path, an http(s) or data:
    URL, base64 text, raw bytes or a PIL image."""
    return SglImage(path)


def image_reference(path: Any) -> str:
    """What image_data carries for image(path): a local file (or bytes, or a PIL image) as base64,
    since the server may run elsewhere; URLs and anything else as given."""
    if hasattr(path, "save") and not isinstance(path, (str, bytes, os.PathLike)):
        buf = io.BytesIO()
        path.save(buf, format="PNG")
        return base64.b64encode(buf.getvalue()).decode("ascii")
    if isinstance(path, (bytes, bytearray)):
        return base64.b64encode(bytes(path)).decode("ascii")
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"image() takes a path, URL, base64 text, bytes or a PIL image, not "
                        f"{type(path).__name__}")
    if path.startswith(("http://", "https://", "data:")):
        return path
    if os.path.isfile(path):
        with open(path, "rb") as f:
            return base64.b64encode(f.read()).decode("ascii")
    return path


def video(path: Any, num_frames: int = 0) -> SglExpr:
    """A video in the prompt: not supported (running it raises NotImplementedError)."""
    return SglVideo(path, num_frames)

