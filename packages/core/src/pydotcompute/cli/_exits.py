"""How the command ends: its exit codes, interruption by SIGINT/SIGTERM, and the log
an internal error leaves instead of a traceback on the terminal."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Final

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "Interrupt",
    "log_traceback",
    "sigterm_as_interrupt",
]

EXIT_OK: Final = 0  #: every record ran cleanly
EXIT_PARTIAL: Final = 1  #: the run finished; some records were bad input or failed in a stage
EXIT_USAGE: Final = 2  #: nothing ran, or the output could not be written: the user's input
EXIT_INTERNAL: Final = 3  #: the run broke (a bug, or a stage's kernel failed): see the log

EXIT_CODES_HELP: Final = (
    "exit status: 0 every record ran cleanly; 1 the run finished but some input records "
    "were bad or failed in a stage (every good one is written); 2 usage or input error "
    "(bad pipeline file, input, option, or an output that cannot be written); 3 the run "
    "broke (an internal error or a stage's kernel failed: one line here, the traceback in "
    "the log file it names); 130 interrupted by SIGINT (Ctrl-C), 143 by SIGTERM (what was "
    "computed is written and the report says 'interrupted'; a second signal exits at once)"
)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises ``KeyboardInterrupt(SIGTERM)`` while this lasts, as Ctrl-C does,
    so that a command stopped before its run (reading a big input, say) ends with one
    line and status 143 rather than dying in silence. A run installs its own handlers
    (:class:`Interrupt`) for its duration."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signum)

    saved = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if saved is None else saved)


def log_traceback(exc: BaseException) -> str:
    """Write ``exc``'s traceback to a new log file in the temp directory; its path, or
    why it could not be written (said in place of the path)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = "".join(traceback.format_exception(exc))
    try:
        fd, path = tempfile.mkstemp(prefix=f"pydotcompute-{stamp}-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(f"pydotcompute {' '.join(sys.argv[1:])}\n{text}")
    except OSError as error:
        return f"no log file: {error.strerror or error}"
    return path


class Interrupt:
    """SIGINT and SIGTERM from when this is made until :meth:`restore`.

    The first signal is remembered in :attr:`signum` and ``announce``d; then the
    ``on_first`` given to :meth:`install` runs on the event loop (it stops the feeding
    and bounds the drain), at once if the signal came before the loop started. From
    then on the next SIGINT or SIGTERM is a plain Python handler, so it works even
    while the loop is busy: it calls ``on_second`` (which saves what it can, quickly)
    and ends the process with 128 + its number, with no traceback.
    """

    SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, announce: Callable[[int], None], on_second: Callable[[], None]) -> None:
        self.signum: int | None = None
        self._announce = announce
        self._on_first: Callable[[int], None] | None = None
        self._on_second = on_second
        self._loop: asyncio.AbstractEventLoop | None = None
        self._saved = {signum: signal.getsignal(signum) for signum in self.SIGNALS}
        # Until the loop runs (asyncio.run leaves a SIGINT handler other than Python's
        # default alone), a signal is only remembered.
        for signum in self.SIGNALS:
            signal.signal(signum, self._early)

    @property
    def exit_status(self) -> int:
        """130 for SIGINT, 143 for SIGTERM (the shell's 128 + signal number)."""
        assert self.signum is not None
        return 128 + self.signum

    def install(self, loop: asyncio.AbstractEventLoop, on_first: Callable[[int], None]) -> None:
        """Handle both signals on ``loop`` (call from the loop's thread)."""
        self._on_first = on_first
        if self.signum is not None:  # it came before the loop started
            loop.call_soon(on_first, self.signum)
            return
        self._loop = loop
        for signum in self.SIGNALS:
            loop.add_signal_handler(signum, self._first, signum)

    def restore(self) -> None:
        """Put back the handlers that were there when this was made."""
        loop, self._loop = self._loop, None
        for signum, handler in self._saved.items():
            if loop is not None and not loop.is_closed():
                loop.remove_signal_handler(signum)
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    def _early(self, signum: int, frame: FrameType | None) -> None:
        self._remember(signum)

    def _first(self, signum: int) -> None:
        if self.signum is not None:  # two signals read from the loop's wakeup at once
            self._second(signum, None)
        loop, self._loop = self._loop, None
        for other in self.SIGNALS:
            if loop is not None:
                loop.remove_signal_handler(other)
        self._remember(signum)
        if self._on_first is not None:
            self._on_first(signum)

    def _remember(self, signum: int) -> None:
        self.signum = signum
        for other in self.SIGNALS:
            signal.signal(other, self._second)
        self._announce(signum)

    def _second(self, signum: int, frame: FrameType | None) -> None:
        print(
            f"{signal.Signals(signum).name} again: exiting at once, without a report",
            file=sys.stderr,
        )
        self._on_second()
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(128 + signum)  # at once: no cleanup that could hang, no traceback
