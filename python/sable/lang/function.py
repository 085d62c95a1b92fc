"""@function programs: run one (run / calling it), run many (run_batch), and the default backend.

A backend is a sable.Engine (used in process), a RuntimeEndpoint, or any Backend; a program runs
on the one given with backend=..., else on set_default_backend's.
"""

from __future__ import annotations

import inspect
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional

from sable.lang.backends import Backend, EngineBackend
from sable.lang.interpreter import ProgramState, StreamExecutor

_default_backend: Optional[Backend] = None

# run()/run_batch() keywords that set sampling defaults for every gen of the program.
_RUN_SAMPLING = {"max_new_tokens": "max_new_tokens", "stop": "stop",
                 "stop_token_ids": "stop_token_ids", "temperature": "temperature",
                 "top_p": "top_p", "top_k": "top_k", "min_p": "min_p",
                 "frequency_penalty": "frequency_penalty", "presence_penalty": "presence_penalty",
                 "ignore_eos": "ignore_eos"}


def _as_backend(backend: Any) -> Backend:
    if isinstance(backend, Backend):
        return backend
    from sable.engine import Engine
    if isinstance(backend, Engine):
        return EngineBackend(backend)
    raise TypeError(f"a backend is a sable.Engine or a RuntimeEndpoint, got "
                    f"{type(backend).__name__}")


def set_default_backend(backend: Any) -> None:
    global _default_backend
    _default_backend = _as_backend(backend)


def get_default_backend() -> Optional[Backend]:
    return _default_backend


def _backend(backend: Any) -> Backend:
    if backend is not None:
        return _as_backend(backend)
    if _default_backend is None:
        raise RuntimeError("no backend: call sable.set_default_backend(sable.Engine(...) or "
                           "sable.RuntimeEndpoint(url)), or pass backend=")
    return _default_backend


def flush_cache(backend: Any = None) -> Any:
    return _backend(backend).flush_cache()


def get_server_info(backend: Any = None) -> dict:
    return _backend(backend).get_server_info()


class SglFunction:
    def __init__(self, func: Callable, num_api_spec_tokens: Optional[int] = None) -> None:
        self.func = func
        params = list(inspect.signature(func).parameters)
        if not params:
            raise TypeError(f"@function {func.__name__} must take the state as first argument")
        self.arg_names = params[1:]

    def __call__(self, *args: Any, **kwargs: Any) -> ProgramState:
        return self.run(*args, **kwargs)

    def _start(self, backend: Backend, sampling: dict, stream: bool) -> ProgramState:
        return ProgramState(StreamExecutor(backend, backend.roles, sampling, stream))

    @staticmethod
    def _sampling(kwargs: dict) -> dict:
        return {_RUN_SAMPLING[k]: v for k, v in kwargs.items() if v is not None}

    def run(self, *args: Any, max_new_tokens: int = 128, stop: Any = None,
            stop_token_ids: Any = None, temperature: float = 1.0, top_p: float = 1.0,
            top_k: int = -1, min_p: float = 0.0, frequency_penalty: float = 0.0,
            presence_penalty: float = 0.0, ignore_eos: bool = False, stream: bool = False,
            backend: Any = None, **kwargs: Any) -> ProgramState:
        """Runs the program; returns its state. stream=True returns at once (read it with
        state.text_iter()); otherwise it waits, and an error of the program is raised here."""
        sampling = self._sampling(dict(
            max_new_tokens=max_new_tokens, stop=stop, stop_token_ids=stop_token_ids,
            temperature=temperature, top_p=top_p, top_k=top_k, min_p=min_p,
            frequency_penalty=frequency_penalty, presence_penalty=presence_penalty,
            ignore_eos=ignore_eos))
        state = self._start(_backend(backend), sampling, stream)
        try:
            state.ret_value = self.func(state, *args, **kwargs)
        finally:
            state.stream_executor.end()
        if not stream:
            state.sync()
        return state

    def run_batch(self, batch_kwargs: list[dict], *, max_new_tokens: int = 128,
                  stop: Any = None, stop_token_ids: Any = None, temperature: float = 1.0,
                  top_p: float = 1.0, top_k: int = -1, min_p: float = 0.0,
                  frequency_penalty: float = 0.0, presence_penalty: float = 0.0,
                  ignore_eos: bool = False, backend: Any = None,
                  num_threads: Any = "auto", progress_bar: bool = False) -> list[ProgramState]:
        """Runs the program once per kwargs dict, num_threads at a time; states in input order.
        A program that failed has its error in state.error() (reading its variables raises it)."""
        if not isinstance(batch_kwargs, (list, tuple)) or not all(
                isinstance(k, dict) for k in batch_kwargs):
            raise TypeError("run_batch needs a list of dicts of the program's arguments")
        if num_threads == "auto":
            num_threads = max(96, (os.cpu_count() or 1) * 16)
        if not isinstance(num_threads, int) or num_threads < 1:
            raise ValueError("num_threads must be a positive int or 'auto'")
        sampling = self._sampling(dict(
            max_new_tokens=max_new_tokens, stop=stop, stop_token_ids=stop_token_ids,
            temperature=temperature, top_p=top_p, top_k=top_k, min_p=min_p,
            frequency_penalty=frequency_penalty, presence_penalty=presence_penalty,
            ignore_eos=ignore_eos))
        chosen = _backend(backend)

        def one(kwargs: dict) -> ProgramState:
            state = self._start(chosen, sampling, False)
            try:
                state.ret_value = self.func(state, **kwargs)
            except Exception as e:  # reported through the state, as SGLang does
                state.stream_executor.error = state.stream_executor.error or e
            finally:
                state.stream_executor.end()
            state.stream_executor._idle.wait()
            return state

        bar = None
        if progress_bar:
            from tqdm import tqdm
            bar = tqdm(total=len(batch_kwargs))
        try:
            with ThreadPoolExecutor(min(num_threads, max(len(batch_kwargs), 1))) as pool:
                futures = [pool.submit(one, kwargs) for kwargs in batch_kwargs]
                if bar is not None:
                    for future in futures:
                        future.add_done_callback(lambda _: bar.update(1))
                return [future.result() for future in futures]
        finally:
            if bar is not None:
                bar.close()


def function(func: Optional[Callable] = None, num_api_spec_tokens: Optional[int] = None):
    """@function / @function(...): makes a frontend program of `func(s, ...)`."""
    if func is not None:
        return SglFunction(func, num_api_spec_tokens)

    def decorator(f: Callable) -> SglFunction:
        return SglFunction(f, num_api_spec_tokens)
    return decorator
