"""sable.Engine: SGLang's offline engine API (sgl.Engine) over Sable's C++ engine, in process.

Requests go through the same C++ code as the HTTP server's /generate (parsing, tokenization,
validation, response shaping), so every result is the dict /generate returns: {"text",
"output_ids", "meta_info"}. The GIL is released while C++ works. Four modes, as in SGLang:

    llm.generate(prompts, params)                      -> dict | list[dict]
    llm.generate(prompt, params, stream=True)          -> iterator of chunks
    await llm.async_generate(prompts, params)          -> dict | list[dict]
    await llm.async_generate(prompt, params, stream=True) -> async iterator of chunks

Chunks carry the cumulative text so far (SGLang's default), or only the new piece when the engine
was made with incremental_streaming_output=True (SGLang's --incremental-streaming-output).
"""

from __future__ import annotations

import atexit
import json
import weakref
from typing import Any, AsyncIterator, Iterator, Optional, Union

from sable import _sable
from sable.async_hub import AsyncHub
from sable.tokenizer import Tokenizer

_SHUT_DOWN = "this sable.Engine has been shut down (shutdown() was called); create a new Engine"
_live_engines: "weakref.WeakSet[Engine]" = weakref.WeakSet()


def _check_prompt(prompt: Any) -> None:
    if prompt is None or isinstance(prompt, str):
        return
    if isinstance(prompt, (list, tuple)) and all(isinstance(p, str) for p in prompt):
        return
    raise TypeError(f"prompt must be a str or a list of str, got {type(prompt).__name__}")


def _check_sampling_params(params: Any) -> None:
    if params is None or isinstance(params, dict):
        return
    if isinstance(params, (list, tuple)) and all(isinstance(p, dict) for p in params):
        return
    raise TypeError(
        f"sampling_params must be a dict or a list of dicts, got {type(params).__name__}")


def _check_input_ids(ids: Any) -> None:
    if ids is None:
        return
    ok = isinstance(ids, (list, tuple)) and (
        all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
        or all(isinstance(row, (list, tuple)) and
               all(isinstance(i, int) and not isinstance(i, bool) for i in row) for row in ids))
    if not ok:
        raise TypeError("input_ids must be a list of int or a list of lists of int")


class Engine:
    """An in-process Sable engine. Keywords are `sable serve`'s options with SGLang's names
    (model_path, impl, tp_size, mem_fraction_static, context_length, ...); `config` names a
    YAML file of them. An unknown keyword is a TypeError, a bad value a ValueError."""

    def __init__(self, config: Optional[str] = None, **server_args: Any) -> None:
        self._runtime = None
        if config is not None and not isinstance(config, str):
            raise TypeError("config must be the path of a YAML file of options")
        # As SGLang's Engine: quiet unless asked (the server logs at info).
        server_args.setdefault("log_level", "error")
        self._runtime = _sable.Runtime.create(config or "", server_args)
        self._hub = AsyncHub(self._runtime)
        self._tokenizer = Tokenizer(self._runtime)
        _live_engines.add(self)

    # ---- generation ---------------------------------------------------------------------------

    def _body(self, prompt, sampling_params, input_ids, stream, fields) -> str:
        self._check_open()
        _check_prompt(prompt)
        _check_sampling_params(sampling_params)
        _check_input_ids(input_ids)
        if not isinstance(stream, bool):
            raise TypeError("stream must be a bool")
        if prompt is None and input_ids is None:
            raise ValueError("either prompt (text) or input_ids is required")
        body = {"text": prompt, "input_ids": input_ids, "sampling_params": sampling_params,
                "stream": stream}
        body.update(fields)
        # SGLang's defaults (False, None) mean "absent".
        body = {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in body.items() if v is not None and v is not False or k == "stream"}
        try:
            return json.dumps(body)
        except (TypeError, ValueError) as e:
            raise TypeError(f"the request has a value that is not JSON-serialisable: {e}") from None

    def generate(
        self,
        prompt: Optional[Union[str, list[str]]] = None,
        sampling_params: Optional[Union[dict, list[dict]]] = None,
        input_ids: Optional[Union[list[int], list[list[int]]]] = None,
        stream: bool = False,
        **fields: Any,
    ) -> Union[dict, list[dict], Iterator[dict]]:
        """The /generate of this engine: a dict (one prompt), a list of dicts (a list of
        prompts), or with stream=True an iterator of chunks. /generate's other fields are
        keywords: return_logprob, logprob_start_len, top_logprobs_num, token_ids_logprob,
        return_text_in_logprobs, rid, lora_path (a loaded LoRA adapter's name, or one per
        prompt), image_data (a vision-language model: one image per placeholder of the prompt,
        a path, URL, data: URL or base64; a list for several, one entry per prompt of a batch),
        ... (video_data and the like are refused with a ValueError naming them, as the server
        does)."""
        call = self._runtime.submit(
            self._body(prompt, sampling_params, input_ids, stream, fields), False)
        if stream:
            return self._stream(call)
        return json.loads(call.next_output()[0])

    @staticmethod
    def _stream(call) -> Iterator[dict]:
        try:
            while True:
                outs = call.next_output()
                if not outs:
                    return
                for chunk in outs:
                    yield json.loads(chunk)
        finally:
            if not call.finished:
                call.abort()  # the consumer went away (or Ctrl-C): free the request

    async def async_generate(
        self,
        prompt: Optional[Union[str, list[str]]] = None,
        sampling_params: Optional[Union[dict, list[dict]]] = None,
        input_ids: Optional[Union[list[int], list[list[int]]]] = None,
        stream: bool = False,
        **fields: Any,
    ) -> Union[dict, list[dict], AsyncIterator[dict]]:
        """generate() for asyncio: awaits the result, or with stream=True returns an async
        iterator of chunks. Many concurrent calls are batched by the scheduler."""
        call = self._runtime.submit(
            self._body(prompt, sampling_params, input_ids, stream, fields), True)
        if stream:
            return self._hub.stream(call)
        return await self._hub.result(call)

    def _request(self, body: dict):
        """A raw /generate body (sable.lang's backend): the answer, or chunks when it streams."""
        self._check_open()
        call = self._runtime.submit(json.dumps(body), False)
        if body.get("stream"):
            return self._stream(call)
        return json.loads(call.next_output()[0])

    # ---- embeddings ---------------------------------------------------------------------------

    def encode(self, prompt: Union[str, list[str], list[int], list[list[int]]],
               image_data: Any = None, **extra: Any) -> Union[dict, list[dict]]:
        """Embeddings of an embedding model (is_embedding=True): {"embedding", "meta_info"} per
        prompt, as /encode."""
        self._check_open()
        if isinstance(prompt, str) or (isinstance(prompt, (list, tuple)) and prompt and
                                       all(isinstance(p, str) for p in prompt)):
            body = {"text": prompt}
        else:
            _check_input_ids(prompt)
            body = {"input_ids": prompt}
        if image_data is not None:
            body["image_data"] = image_data
        body.update(extra)
        return json.loads(self._runtime.encode(json.dumps(body)))

    # ---- control ------------------------------------------------------------------------------

    def get_server_info(self) -> dict:
        self._check_open()
        return json.loads(self._runtime.server_info())

    def get_model_info(self) -> dict:
        self._check_open()
        return json.loads(self._runtime.model_info())

    def flush_cache(self) -> bool:
        """Empties the prefix cache; False (nothing done) while requests run or wait."""
        self._check_open()
        return self._runtime.flush_cache()

    def update_weights_from_disk(self, model_path: str, load_format: Optional[str] = None):
        """Loads new weights of the same architecture: (success, message, num_paused_requests)."""
        self._check_open()
        if not isinstance(model_path, str):
            raise TypeError("model_path must be a str")
        if load_format not in (None, "auto"):
            raise ValueError(f"load_format {load_format!r} is not supported (only 'auto')")
        return self._runtime.update_weights_from_disk(model_path)

    def load_lora_adapter(self, lora_name: str, lora_path: str) -> dict:
        """Loads a PEFT LoRA adapter (a folder or a Hub id) under `lora_name`; needs an engine
        made with enable_lora=True or lora_paths. Returns the loaded adapters {name: path}; a
        ValueError names the problem (a name in use, rank above max_lora_rank, a target module
        the model lacks, shapes that do not fit)."""
        self._check_open()
        if not isinstance(lora_name, str) or not isinstance(lora_path, str):
            raise TypeError("lora_name and lora_path must be str")
        return json.loads(self._runtime.load_lora_adapter(lora_name, lora_path))

    def unload_lora_adapter(self, lora_name: str) -> dict:
        """Unloads adapter `lora_name` (a ValueError while requests still use it); returns the
        adapters left {name: path}."""
        self._check_open()
        if not isinstance(lora_name, str):
            raise TypeError("lora_name must be a str")
        return json.loads(self._runtime.unload_lora_adapter(lora_name))

    def start_expert_distribution_record(self) -> None:
        self._check_open()
        self._runtime.start_expert_distribution_record()

    def stop_expert_distribution_record(self) -> None:
        self._check_open()
        self._runtime.stop_expert_distribution_record()

    def dump_expert_distribution_record(self) -> dict:
        """The counts since start (also written as CSV, as SGLang does); zeroes them."""
        self._check_open()
        return json.loads(self._runtime.dump_expert_distribution_record())

    @property
    def tokenizer(self) -> Tokenizer:
        """encode / decode / apply_chat_template with the model's tokenizer."""
        self._check_open()
        return self._tokenizer

    def get_tokenizer(self) -> Tokenizer:
        return self.tokenizer

    def shutdown(self) -> None:
        """Stops the engine; requests in flight end with finish_reason abort. Idempotent."""
        if self._runtime is not None and not self._runtime.is_shut_down:
            self._runtime.shutdown()
            self._hub.close()

    def _check_open(self) -> None:
        if self._runtime is None or self._runtime.is_shut_down:
            raise RuntimeError(_SHUT_DOWN)

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    def __del__(self) -> None:
        try:
            self.shutdown()
        except Exception:
            pass


@atexit.register
def _shutdown_all() -> None:
    for engine in list(_live_engines):
        engine.shutdown()
