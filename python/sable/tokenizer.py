"""The model's tokenizer as Engine.tokenizer: encode, decode and apply_chat_template with the
Hugging Face call shapes, computed by Sable's C++ tokenizer and chat-template renderer (the same
ones the server uses)."""

from __future__ import annotations

import json
from typing import Any, Optional, Union


class Tokenizer:
    def __init__(self, runtime) -> None:
        self._runtime = runtime

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self._runtime.tokenize(text, bool(add_special_tokens))

    def __call__(self, text: Union[str, list[str]], add_special_tokens: bool = True) -> dict:
        if isinstance(text, list):
            return {"input_ids": [self.encode(t, add_special_tokens) for t in text]}
        return {"input_ids": self.encode(text, add_special_tokens)}

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        if not isinstance(ids, (list, tuple)) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise TypeError("ids must be a list of int")
        return self._runtime.detokenize(list(ids), bool(skip_special_tokens))

    def batch_decode(self, rows: list[list[int]], skip_special_tokens: bool = True) -> list[str]:
        return [self.decode(r, skip_special_tokens) for r in rows]

    def apply_chat_template(self, messages: list[dict], tokenize: bool = True,
                            add_generation_prompt: bool = False,
                            tools: Optional[list[dict]] = None, **kwargs: Any):
        """The chat template rendered over `messages` (text with tokenize=False, else ids;
        the template's own tokens are in the text, so ids come without added special tokens)."""
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise TypeError("messages must be a list of dicts with role and content")
        context = dict(kwargs)
        context["messages"] = messages
        context["add_generation_prompt"] = bool(add_generation_prompt)
        if tools is not None:
            context["tools"] = tools
        text = self._runtime.apply_chat_template(json.dumps(context))
        return self.encode(text, add_special_tokens=False) if tokenize else text

    @property
    def has_chat_template(self) -> bool:
        return self._runtime.has_chat_template
