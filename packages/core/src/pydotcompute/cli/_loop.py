"""The event loop the command runs on: uvloop when it is installed
(``pip install pydotcompute[uvloop]``), else asyncio's own.

``PYDOTCOMPUTE_LOOP=asyncio`` or ``=uvloop`` chooses one explicitly (the second fails
with one line when uvloop is missing). Library users choose for themselves:
``uvloop.run(main())`` or ``asyncio.run(main())``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar

from ..errors import InvalidArgumentError

__all__ = ["LOOP_ENV", "loop_name", "run_on_loop"]

#: The environment variable that chooses the loop.
LOOP_ENV: Final = "PYDOTCOMPUTE_LOOP"
_T = TypeVar("_T")


def _loop_factory() -> tuple[str, Callable[[], asyncio.AbstractEventLoop] | None]:
    """The chosen loop's name and factory (None: asyncio's default).

    Raises:
        InvalidArgumentError: the variable names no loop, or uvloop is asked for and
            not installed.
    """
    wanted = os.environ.get(LOOP_ENV, "").strip().lower()
    if wanted not in ("", "asyncio", "uvloop"):
        raise InvalidArgumentError(
            f"{LOOP_ENV}={wanted!r}: choose 'asyncio' or 'uvloop' (or leave it unset)"
        )
    if wanted == "asyncio":
        return "asyncio", None
    try:
        import uvloop
    except ImportError:
        if wanted == "uvloop":
            raise InvalidArgumentError(
                f"{LOOP_ENV}=uvloop, but uvloop is not installed: "
                "pip install 'pydotcompute[uvloop]'"
            ) from None
        return "asyncio", None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return "uvloop", factory


def loop_name() -> str:
    """``"uvloop"`` or ``"asyncio"``: the loop :func:`run_on_loop` uses."""
    return _loop_factory()[0]


def run_on_loop(main: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run(main)`` on the chosen loop."""
    try:
        _, factory = _loop_factory()
    except BaseException:
        main.close()  # never awaited: no "coroutine was never awaited" warning
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
