"""Where frontend programs send their requests: the in-process sable.Engine (no HTTP) or any
server speaking SGLang's native API (RuntimeEndpoint: Sable's `sable serve`, SGLang itself).

Both speak /generate bodies; gen, streaming gen and select are written once on top of that
(Backend), the two classes differ only in transport and in where the chat template comes from.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any, Iterator, Optional

from sable.lang.choices import ChoicesMethod, token_length_normalized
from sable.lang.roles import CHATML, Roles, roles_from_template


class Backend:
    def __init__(self) -> None:
        self._roles: Optional[Roles] = None
        self._incremental: Optional[bool] = None

    # Transport (subclasses).
    def _request(self, body: dict) -> Any:
        raise NotImplementedError

    def _request_stream(self, body: dict) -> Iterator[dict]:
        raise NotImplementedError

    def _render_chat(self, messages: list[dict]) -> str:
        raise NotImplementedError

    def get_server_info(self) -> dict:
        raise NotImplementedError

    def flush_cache(self) -> Any:
        raise NotImplementedError

    # What programs use.
    @property
    def roles(self) -> Roles:
        if self._roles is None:
            self._roles = roles_from_template(self._render_chat)
        return self._roles

    def cache_prefix(self, text: str, images: Optional[list] = None) -> None:
        """Prefills `text` without generating, so that requests starting with it (forks) find
        it in the radix cache."""
        self._request(_with_images({"text": text, "sampling_params": {"max_new_tokens": 0}},
                                   images))

    def generate(self, text: str, params: dict, logprob: dict,
                 images: Optional[list] = None) -> tuple[str, dict]:
        out = self._request(_with_images({"text": text, "sampling_params": params, **logprob},
                                         images))
        return out["text"], out["meta_info"]

    def generate_stream(self, text: str, params: dict, logprob: dict,
                        images: Optional[list] = None) -> Iterator[tuple[str, dict]]:
        """(new text, meta_info) per chunk, whether the server streams cumulative or
        incremental text."""
        if self._incremental is None:
            info = self.get_server_info()
            self._incremental = bool(info.get("incremental_streaming_output") or
                                     info.get("stream_output"))
        sent = 0
        body = _with_images({"text": text, "sampling_params": params, "stream": True, **logprob},
                            images)
        for chunk in self._request_stream(body):
            piece = chunk["text"] if self._incremental else chunk["text"][sent:]
            sent += len(piece)
            yield piece, chunk["meta_info"]

    def select(self, text: str, choices: list[str], temperature: float,
               method: ChoicesMethod = token_length_normalized,
               images: Optional[list] = None) -> tuple[str, dict]:
        """Scores every choice after `text` in one batch (the shared prefix cached first) and
        lets `method` decide (SGLang's choices methods; the default is the highest mean
        log-probability per token)."""
        greedy = {"max_new_tokens": 0, "temperature": 0}
        prefix = self._request(_with_images({"text": text, "sampling_params": greedy},
                                            images))  # also caches it
        start = max(prefix["meta_info"]["prompt_tokens"] - 2, 0)  # room for token healing
        outs = self._request(_with_images({
            "text": [text + c for c in choices], "sampling_params": greedy,
            "return_logprob": True, "return_text_in_logprobs": True,
            "logprob_start_len": start}, images, batch=len(choices)))
        scores, token_logprobs = [], []
        for out in outs:
            entries = [e for e in out["meta_info"]["input_token_logprobs"] if e[0] is not None]
            # The first scored token belongs to the prefix when the choice did not merge with it.
            if len(entries) > 1 and entries[0][2] is not None and text.endswith(entries[0][2]):
                entries = entries[1:]
            token_logprobs.append(entries)
            scores.append(sum(e[0] for e in entries) / max(len(entries), 1))
        unconditional = None
        if method.requires_unconditional_logprobs:
            alone = self._request({
                "input_ids": [[e[1] for e in entries] for entries in token_logprobs],
                "sampling_params": greedy, "return_logprob": True, "logprob_start_len": 0})
            unconditional = [o["meta_info"]["input_token_logprobs"] for o in alone]
        best, extra = method.decide(token_logprobs, scores, unconditional)
        meta = dict(outs[best]["meta_info"])
        meta["normalized_prompt_logprobs"] = scores
        meta["choices_token_logprobs"] = token_logprobs
        meta.update(extra)
        return choices[best], meta


def _with_images(body: dict, images: Optional[list], batch: Optional[int] = None) -> dict:
    """`body` with image_data when the program has images (one list per prompt of a batch)."""
    if images:
        body["image_data"] = [list(images)] * batch if batch else list(images)
    return body


class EngineBackend(Backend):
    """An in-process sable.Engine as a program backend (what set_default_backend(engine) makes)."""

    def __init__(self, engine) -> None:
        super().__init__()
        self.engine = engine

    def _request(self, body: dict) -> Any:
        return self.engine._request(body)

    def _request_stream(self, body: dict) -> Iterator[dict]:
        return self.engine._request(body)

    def _render_chat(self, messages: list[dict]) -> str:
        tok = self.engine.tokenizer
        if not tok.has_chat_template:
            raise ValueError("no chat template")
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)

    def get_server_info(self) -> dict:
        return self.engine.get_server_info()

    def flush_cache(self) -> bool:
        return self.engine.flush_cache()


class RuntimeEndpoint(Backend):
    """A server speaking SGLang's native HTTP API at base_url (http://host:port)."""

    def __init__(self, base_url: str, api_key: Optional[str] = None,
                 verify: Any = None, chat_template_name: Optional[str] = None,
                 timeout: float = 600.0) -> None:
        super().__init__()
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"RuntimeEndpoint needs an http(s) URL, got {base_url!r}")
        if chat_template_name not in (None, "chatml"):
            raise ValueError("chat_template_name: Sable reads the server model's own template; "
                             "only 'chatml' may be forced")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.model_info = self._json("GET", "/get_model_info")
        if chat_template_name == "chatml":
            self._roles = CHATML

    def _call(self, method: str, path: str, body: Optional[dict] = None):
        request = urllib.request.Request(self.base_url + path, method=method)
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            request.add_header("Content-Type", "application/json")
        try:
            response = urllib.request.urlopen(request, data=data, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            try:
                detail = json.loads(detail)["error"]["message"]
            except Exception:
                pass
            error = ValueError if 400 <= e.code < 500 else RuntimeError
            raise error(f"{self.base_url}{path} answered {e.code}: {detail}") from None
        except urllib.error.URLError as e:
            raise ConnectionError(f"cannot reach {self.base_url}{path}: {e.reason}") from None
        return response

    def _json(self, method: str, path: str, body: Optional[dict] = None) -> Any:
        with self._call(method, path, body) as response:
            text = response.read().decode()
        return json.loads(text) if text.strip().startswith(("{", "[")) else text

    def _request(self, body: dict) -> Any:
        return self._json("POST", "/generate", body)

    def _request_stream(self, body: dict) -> Iterator[dict]:
        with self._call("POST", "/generate", body) as response:
            for raw in response:
                line = raw.decode().strip()
                if not line.startswith("data:"):
                    continue
                payload = line[len("data:"):].strip()
                if payload == "[DONE]":
                    return
                chunk = json.loads(payload)
                if "error" in chunk:
                    raise RuntimeError(f"{self.base_url}/generate: {chunk['error']}")
                yield chunk

    def _render_chat(self, messages: list[dict]) -> str:
        """The served model's template when its folder is readable here (and jinja2 is
        installed); else ChatML."""
        folder = self.model_info.get("tokenizer_path") or self.model_info.get("model_path")
        config_file = os.path.join(folder or "", "tokenizer_config.json")
        with open(config_file) as f:
            config = json.load(f)
        template = config.get("chat_template")
        if not isinstance(template, str):
            raise ValueError("no chat template")
        import jinja2
        env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
        return env.from_string(template).render(
            messages=messages, add_generation_prompt=False,
            bos_token=_token_text(config.get("bos_token")),
            eos_token=_token_text(config.get("eos_token")))

    def get_server_info(self) -> dict:
        return self._json("GET", "/get_server_info")

    def flush_cache(self) -> bool:
        try:
            self._json("POST", "/flush_cache")
            return True
        except ValueError:
            return False


def _token_text(token: Any) -> str:
    """tokenizer_config.json writes special tokens as text or as {"content": text, ...}."""
    if isinstance(token, dict):
        return token.get("content") or ""
    return token or ""
