"""Role markers (the text before and after a system / user / assistant turn) read off the model's
chat template, so that `s += user(...)` writes what the template would.

The template is rendered over growing conversations whose contents are sentinels; what surrounds
each sentinel is that role's prefix and suffix. A template that adds a default system turn when a
conversation does not start with one (Qwen's "You are a helpful assistant.") gives that turn as
`default_system`, which the interpreter adds as a first system turn, as SGLang does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

_SENTINELS = {"system": "\x01SABLE-SYSTEM\x01", "user": "\x01SABLE-USER\x01",
              "assistant": "\x01SABLE-ASSISTANT\x01"}

# ChatML, SGLang's fallback when no template is known.
CHATML = None  # filled below


@dataclass
class Roles:
    prefix: dict[str, str] = field(default_factory=dict)
    suffix: dict[str, str] = field(default_factory=dict)
    default_system: str = ""  # system content to add when the first turn is not system
    # What image() writes into the prompt: Qwen2-VL's placeholder, as SGLang's qwen2-vl chat
    # template has it (the server expands it to the image's tokens).
    image_token: str = "<|vision_start|><|image_pad|><|vision_end|>"


def _chatml() -> Roles:
    roles = Roles()
    for role in ("system", "user", "assistant"):
        roles.prefix[role] = f"<|im_start|>{role}\n"
        roles.suffix[role] = "<|im_end|>\n"
    return roles


def roles_from_template(render: Callable[[list[dict]], str]) -> Roles:
    """Roles from `render(messages) -> text` (add_generation_prompt off). Falls back to ChatML
    when the template does not render these probes (e.g. it refuses a system turn)."""
    order = ["system", "user", "assistant"]
    try:
        roles = Roles()
        previous = ""
        messages: list[dict] = []
        for role in order:
            messages = messages + [{"role": role, "content": _SENTINELS[role]}]
            text = render(messages)
            if not text.startswith(previous):
                return _chatml()
            block = text[len(previous):]
            before, sep, after = block.partition(_SENTINELS[role])
            if not sep:
                return _chatml()
            roles.prefix[role] = before
            roles.suffix[role] = after
            previous = text
        # A template that inserts a system turn by itself: what precedes a lone user turn.
        lone = render([{"role": "user", "content": _SENTINELS["user"]}])
        head = lone.partition(_SENTINELS["user"])[0]
        block = head[: len(head) - len(roles.prefix["user"])]
        if (head.endswith(roles.prefix["user"]) and block.startswith(roles.prefix["system"])
                and block.endswith(roles.suffix["system"])):
            roles.default_system = block[len(roles.prefix["system"]):
                                         len(block) - len(roles.suffix["system"])]
        return roles
    except Exception:
        return _chatml()


CHATML = _chatml()
