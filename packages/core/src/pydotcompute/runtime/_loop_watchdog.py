"""A thread that notices when the event loop stops turning, and names who holds it.

Every kernel shares one event loop: a kernel that computes without awaiting (a CPU-bound
call, a ``while True`` without ``await``) freezes all of them, timers and I/O included,
and nothing inside the loop can notice. A thread can: a callback on the loop stamps the
time every quarter threshold; when the stamp grows older than the threshold, the thread
logs a warning naming the task that is running and the loop thread's stack.

The thread only reads: the stamp (a float), the loop's ``is_running``/``is_closed``, the
current task of the loop and the loop thread's frames. It never calls into the loop.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
import weakref

__all__ = ["DEFAULT_LOOP_BLOCK_S", "LoopWatchdog"]

logger = logging.getLogger("pydotcompute")

# Long enough that a first JIT compile or a big batch does not cry wolf, short enough
# that a frozen program names its culprit while someone is still looking.
DEFAULT_LOOP_BLOCK_S = 5.0
_CHECKS_PER_THRESHOLD = 4
_KERNEL_TASK_PREFIX = "ring-kernel:"


class LoopWatchdog:
    """Watches the running event loop from a daemon thread; :meth:`stop` ends it."""

    def __init__(self, threshold: float) -> None:
        loop = asyncio.get_running_loop()
        self.threshold = threshold
        self._interval = threshold / _CHECKS_PER_THRESHOLD
        self._loop = weakref.ref(loop)
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()
        self._blocked_by: str | None = None  # set while a block is reported
        self._stopped = threading.Event()
        self._handle = loop.call_later(self._interval, self._tick)
        self._thread = threading.Thread(
            target=self._watch, name="pydotcompute-loop-watchdog", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """End the thread (call from the loop's thread). Idempotent."""
        self._handle.cancel()
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)

    def _tick(self) -> None:
        self._beat = time.monotonic()
        loop = self._loop()
        if loop is not None and not self._stopped.is_set():
            self._handle = loop.call_later(self._interval, self._tick)

    def _watch(self) -> None:
        while not self._stopped.wait(self._interval):
            loop = self._loop()
            if loop is None or loop.is_closed():
                return
            now = time.monotonic()
            if not loop.is_running():
                self._beat = now  # a stopped loop is not a blocked one
                continue
            silent = now - self._beat
            if silent < self.threshold:
                if self._blocked_by is not None:
                    logger.warning(
                        "the event loop runs again: %s held it for at least %.1f s",
                        self._blocked_by,
                        self.threshold,
                    )
                    self._blocked_by = None
            elif self._blocked_by is None:
                self._blocked_by = self._culprit(loop)
                self._report(silent)

    def _culprit(self, loop: asyncio.AbstractEventLoop) -> str:
        task = asyncio.current_task(loop)
        if task is None:
            return "code outside any task (a callback)"
        name = task.get_name()
        if name.startswith(_KERNEL_TASK_PREFIX):
            return f"kernel {name[len(_KERNEL_TASK_PREFIX) :]!r}"
        return f"task {name!r}"

    def _report(self, silent: float) -> None:
        frame = sys._current_frames().get(self._loop_thread)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "(unknown)\n"
        logger.warning(
            "the event loop has not run for %.1f s: %s is running without awaiting, and no "
            "other kernel, timer or I/O can run meanwhile. Move CPU-bound Python off the "
            "loop (asyncio.to_thread, loop.run_in_executor, a process pool). Its stack:\n%s",
            silent,
            self._blocked_by,
            stack,
        )
