"""Runs frontend-language programs: a ProgramState per program (and per fork), each executing the
expressions added with `s += ...` in order on its own worker thread, as SGLang's StreamExecutor.

`s += gen(...)` returns at once; reading `s["name"]`, `s.text()` or forking waits for what was
queued before. So forks generate in parallel, and a program's Python code overlaps its requests.
An error in a queued expression is raised by the next read of the state (and by run()).
"""

from __future__ import annotations

import queue
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from sable.lang import ir
from sable.lang.roles import Roles

_END = object()  # closes a text_iter stream


class StreamExecutor:
    def __init__(self, backend, roles: Roles, sampling: dict, stream: bool) -> None:
        self.backend = backend
        self.roles = roles
        self.sampling = sampling  # program-level defaults (run(temperature=...))
        self.stream = stream
        self.text_ = ""
        self.images_: list[str] = []  # image() references, in prompt order (sent as image_data)
        self.messages_: list[dict] = []
        self.variables: dict[str, Any] = {}
        self.meta_info: dict[str, dict] = {}
        self.var_events: dict[str, threading.Event] = {}
        self.cur_role: Optional[str] = None
        self.cur_role_begin = 0
        self.error: Optional[BaseException] = None
        self.stream_queue: "queue.Queue[Any]" = queue.Queue()
        self.var_streams: dict[str, "queue.Queue[Any]"] = {}
        self._queue: "queue.Queue[Any]" = queue.Queue()
        self._idle = threading.Event()
        self._idle.set()
        self._lock = threading.Lock()
        self._pending = 0
        self._thread = threading.Thread(target=self._worker, daemon=True, name="sable-program")
        self._thread.start()

    # ---- queueing -----------------------------------------------------------------------------

    def submit(self, expr: ir.SglExpr) -> None:
        for item in expr.items if isinstance(expr, ir.SglExprList) else [expr]:
            if isinstance(item, (ir.SglGen, ir.SglSelect)) and item.name is not None:
                self.var_events.setdefault(item.name, threading.Event()).clear()
                if self.stream:
                    self.var_streams[item.name] = queue.Queue()
        with self._lock:
            self._pending += 1
            self._idle.clear()
        self._queue.put(expr)

    def sync(self) -> None:
        self._idle.wait()
        self.raise_error()

    def end(self) -> None:
        self._queue.put(None)

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def _worker(self) -> None:
        while True:
            expr = self._queue.get()
            if expr is None:
                self.stream_queue.put(_END)
                return
            try:
                if self.error is None:
                    self._execute(expr)
            except BaseException as e:  # kept for the reader of the state
                self.error = e
                for event in self.var_events.values():
                    event.set()
            finally:
                with self._lock:
                    self._pending -= 1
                    if self._pending == 0:
                        self._idle.set()

    # ---- execution ----------------------------------------------------------------------------

    def _append(self, text: str) -> None:
        self.text_ += text
        if self.stream:
            self.stream_queue.put(text)

    def _execute(self, expr: ir.SglExpr) -> None:
        if isinstance(expr, ir.SglExprList):
            for item in expr.items:
                self._execute(item)
        elif isinstance(expr, ir.SglConstantText):
            self._append(expr.value)
        elif isinstance(expr, ir.SglRoleBegin):
            self._role_begin(expr.role)
        elif isinstance(expr, ir.SglRoleEnd):
            self._role_end(expr.role)
        elif isinstance(expr, ir.SglGen):
            self._gen(expr)
        elif isinstance(expr, ir.SglSelect):
            self._select(expr)
        elif isinstance(expr, ir.SglImage):
            # As SGLang's frontend: the image travels as image_data (a local file as base64, so
            # a remote server can read it) and the prompt gets the model's image placeholder.
            self.images_.append(ir.image_reference(expr.path))
            self._append(self.roles.image_token)
        elif isinstance(expr, ir.SglVideo):
            raise NotImplementedError("video(): video input is not supported by Sable")
        else:
            raise TypeError(f"cannot run a {type(expr).__name__} in a program")

    def _role_begin(self, role: str) -> None:
        if role not in self.roles.prefix:
            raise ValueError(f"unknown role {role!r}: use system, user or assistant")
        if self.cur_role is not None:
            raise ValueError(f"{role}_begin() inside {self.cur_role}: nested roles are not allowed")
        if not self.messages_ and role != "system" and self.roles.default_system:
            self._role_begin("system")
            self._append(self.roles.default_system)
            self._role_end("system")
        self.cur_role = role
        self._append(self.roles.prefix[role])
        self.cur_role_begin = len(self.text_)

    def _role_end(self, role: str) -> None:
        if self.cur_role != role:
            raise ValueError(f"{role}_end() without a matching {role}_begin()")
        self.messages_.append({"role": role, "content": self.text_[self.cur_role_begin:]})
        self._append(self.roles.suffix[role])
        self.cur_role = None

    def _set_var(self, name: Optional[str], value: Any, meta: Optional[dict]) -> None:
        if name is None:
            return
        self.variables[name] = value
        if meta is not None:
            self.meta_info[name] = meta
        self.var_events.setdefault(name, threading.Event()).set()

    def _gen(self, expr: ir.SglGen) -> None:
        params = dict(self.sampling)
        params.update(expr.sampling)
        if self.stream:
            pieces = self.var_streams.get(expr.name) if expr.name else None
            text, meta = "", None
            for piece, meta in self.backend.generate_stream(self.text_, params, expr.logprob,
                                                            self.images_):
                text += piece
                self._append(piece)
                if pieces is not None:
                    pieces.put(piece)
            if pieces is not None:
                pieces.put(_END)
        else:
            text, meta = self.backend.generate(self.text_, params, expr.logprob, self.images_)
            self._append(text)
        self._set_var(expr.name, text, meta)

    def _select(self, expr: ir.SglSelect) -> None:
        choice, meta = self.backend.select(self.text_, expr.choices, expr.temperature,
                                           expr.choices_method, self.images_)
        self._append(choice)
        self._set_var(expr.name, choice, meta)
        if self.stream and expr.name in self.var_streams:
            self.var_streams[expr.name].put(choice)
            self.var_streams[expr.name].put(_END)

    def copy_from(self, other: "StreamExecutor") -> None:
        self.text_ = other.text_
        self.images_ = list(other.images_)
        self.messages_ = list(other.messages_)
        self.variables = dict(other.variables)
        self.meta_info = dict(other.meta_info)
        self.cur_role = other.cur_role
        self.cur_role_begin = other.cur_role_begin
        for name in self.variables:
            self.var_events.setdefault(name, threading.Event()).set()


class ProgramState:
    """The `s` of a program: `s += expr`, `s["name"]`, `s.text()`, `s.messages()`, forks."""

    def __init__(self, executor: StreamExecutor) -> None:
        self.stream_executor = executor
        self.ret_value: Any = None

    def __iadd__(self, other: Any) -> "ProgramState":
        self.stream_executor.submit(ir._expr(other))
        return self

    def __getitem__(self, name: str) -> Any:
        return self.get_var(name)

    def __setitem__(self, name: str, value: Any) -> None:
        self.set_var(name, value)

    def __contains__(self, name: str) -> bool:
        return name in self.stream_executor.var_events

    def get_var(self, name: str) -> Any:
        ex = self.stream_executor
        event = ex.var_events.get(name)
        if event is None:
            raise KeyError(f"the program has no variable {name!r} (gen/select name=)")
        event.wait()
        ex.raise_error()
        return ex.variables[name]

    def set_var(self, name: str, value: Any) -> None:
        self.stream_executor.sync()
        self.stream_executor._set_var(name, value, None)

    def get_meta_info(self, name: str) -> Optional[dict]:
        self.get_var(name)
        return self.stream_executor.meta_info.get(name)

    def text(self) -> str:
        self.stream_executor.sync()
        return self.stream_executor.text_

    def messages(self) -> list[dict]:
        self.stream_executor.sync()
        return list(self.stream_executor.messages_)

    def sync(self) -> None:
        self.stream_executor.sync()

    def error(self) -> Optional[BaseException]:
        self.stream_executor._idle.wait()
        return self.stream_executor.error

    def fork(self, size: int = 1) -> "ProgramStateGroup":
        """`size` copies of this state (text, roles, variables), each running on its own."""
        if not isinstance(size, int) or size < 1:
            raise ValueError("fork(size) needs a positive int")
        ex = self.stream_executor
        ex.sync()
        if size > 1 and ex.text_:
            ex.backend.cache_prefix(ex.text_, ex.images_)  # the branches then share it from the radix cache
        states = []
        for _ in range(size):
            child = StreamExecutor(ex.backend, ex.roles, ex.sampling, ex.stream)
            child.copy_from(ex)
            states.append(ProgramState(child))
        return ProgramStateGroup(states, self)

    def text_iter(self, var_name: Optional[str] = None) -> Iterator[str]:
        """With run(stream=True): the text as it is written (or only variable var_name's)."""
        ex = self.stream_executor
        if not ex.stream:
            yield self.text() if var_name is None else self.get_var(var_name)
            return
        q = ex.stream_queue if var_name is None else ex.var_streams.get(var_name)
        if q is None:
            raise KeyError(f"the program has no variable {var_name!r} (gen/select name=)")
        while True:
            piece = q.get()
            if piece is _END:
                ex.raise_error()
                return
            yield piece

    @contextmanager
    def _role(self, role: str):
        self += ir.SglRoleBegin(role)
        yield
        self += ir.SglRoleEnd(role)

    # s.user("...") adds the turn (and returns it, as SGLang); s.user() is a `with` scope.
    def _role_common(self, role: str, expr: Any):
        if expr is None:
            return self._role(role)
        turn = ir._role(role, expr)
        self.stream_executor.submit(turn)
        return turn

    def system(self, expr: Any = None):
        return self._role_common("system", expr)

    def user(self, expr: Any = None):
        return self._role_common("user", expr)

    def assistant(self, expr: Any = None):
        return self._role_common("assistant", expr)

    def __repr__(self) -> str:
        return f"ProgramState({self.text()!r})"

    def __del__(self) -> None:
        self.stream_executor.end()


class ProgramStateGroup:
    """What fork() returns: indexable, iterable; join() waits for every fork."""

    def __init__(self, states: list[ProgramState], parent: ProgramState) -> None:
        self.states = states
        self.parent = parent

    def __getitem__(self, i: int) -> ProgramState:
        return self.states[i]

    def __len__(self) -> int:
        return len(self.states)

    def __iter__(self):
        return iter(self.states)

    def join(self, mode: str = "gather_variable") -> None:
        if mode != "gather_variable":
            raise ValueError("join() supports mode='gather_variable'")
        for state in self.states:
            state.sync()
