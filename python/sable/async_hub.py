"""Wakes asyncio tasks when their engine requests have output, without a thread per request.

Each asynchronous call registers an asyncio.Event under its id. One daemon thread per engine
blocks in C++ (GIL released) until the scheduler reports ids with output ready, then sets their
events on their own loops, one call_soon_threadsafe per loop and batch. Works under asyncio.run,
in several loops one after another, and inside a running loop patched by nest_asyncio.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict
from typing import AsyncIterator


def _set_all(events) -> None:
    for event in events:
        event.set()


class AsyncHub:
    def __init__(self, runtime) -> None:
        self._runtime = runtime
        self._lock = threading.Lock()
        self._waiters: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
        self._thread: threading.Thread | None = None
        self._closed = False

    def _register(self, call) -> asyncio.Event:
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        with self._lock:
            self._waiters[call.id] = (loop, event)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sable-async", daemon=True)
                self._thread.start()
        return event

    def _unregister(self, call) -> None:
        with self._lock:
            self._waiters.pop(call.id, None)

    def _run(self) -> None:
        while not self._closed and not self._runtime.is_shut_down:
            ids = self._runtime.wait_ready(0.5)
            if not ids:
                continue
            by_loop = defaultdict(list)
            with self._lock:
                for call_id in ids:
                    waiter = self._waiters.get(call_id)
                    if waiter is not None:
                        by_loop[waiter[0]].append(waiter[1])
            for loop, events in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_set_all, events)
                except RuntimeError:
                    pass  # that loop is closed: its tasks are gone
        # Shut down: wake everyone so that they see the aborted requests.
        with self._lock:
            waiters = list(self._waiters.values())
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:
                pass

    def close(self) -> None:
        self._closed = True

    async def result(self, call):
        event = self._register(call)
        try:
            while True:
                outs = call.take()
                if outs:
                    return json.loads(outs[0])
                await event.wait()
                event.clear()
        finally:
            self._unregister(call)
            if not call.finished:
                call.abort()  # cancelled (or the loop stopped): free the request

    async def stream(self, call) -> AsyncIterator[dict]:
        event = self._register(call)
        try:
            while True:
                outs = call.take()
                for chunk in outs:
                    yield json.loads(chunk)
                if call.finished:
                    if not outs:
                        return
                    continue
                if not outs:
                    await event.wait()
                    event.clear()
        finally:
            self._unregister(call)
            if not call.finished:
                call.abort()
