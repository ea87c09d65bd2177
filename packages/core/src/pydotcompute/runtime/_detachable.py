"""A kernel's coroutine, driven for its task by a step loop the runtime can cut.

A coroutine that swallows every exception around its awaits can never be stopped:
cancellation, ``close()`` and ``GeneratorExit`` all come back as one more await. If the
task drove it with a plain ``await``, the task could never end either, and ``asyncio.run``
(which cancels and then waits for every task at exit) would never return. Stepping the
coroutine here instead lets the runtime *let go* of it: the task ends at its next wake-up,
without the coroutine, and the coroutine is closed once dropped, while the loop still runs
(closing it later, with no loop running, would spin forever inside its ``except``).
"""

from __future__ import annotations

import traceback
from collections.abc import Coroutine, Generator
from types import FrameType
from typing import Any

__all__ = ["Detachable", "coroutine_stack"]


class Detachable:
    """``await Detachable(coro)`` runs ``coro`` as ``await coro`` would, until
    :meth:`release`; from then on the next exception thrown in (a cancellation) ends
    the await with that exception, and ``coro`` is no longer touched."""

    __slots__ = ("_coro",)

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._coro: Coroutine[Any, Any, Any] | None = coro

    def release(self) -> Coroutine[Any, Any, Any] | None:
        """Let go of the coroutine and hand it over (None if already let go)."""
        coro, self._coro = self._coro, None
        return coro

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self._coro
        if coro is None:
            raise RuntimeError("a released Detachable cannot be awaited")
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = coro.send(value) if error is None else coro.throw(error)
            except StopIteration as stop:
                return stop.value
            finally:
                error = None
            try:
                value = yield step
            except GeneratorExit:
                if self._coro is not None:
                    coro.close()
                raise
            except BaseException as exc:
                if self._coro is None:
                    # Let go: this frame may outlive the await in a traceback, so it
                    # must not keep the coroutine alive.
                    coro = None
                    raise
                value, error = None, exc


def coroutine_stack(coro: Coroutine[Any, Any, Any]) -> str:
    """Where a suspended coroutine waits, outermost frame first, as a traceback's lines."""
    frames: list[tuple[FrameType, int]] = []
    awaited: Any = coro
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            break
        frames.append((frame, frame.f_lineno))
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return "".join(traceback.StackSummary.extract(iter(frames)).format())
