"""Garbage-collector settings for a pipeline run that streams millions of messages.

Per-message traffic allocates several small objects per record (the message, its id,
its payload view), nearly all of which die within a batch or two. With CPython's
default thresholds the cyclic collector runs every 700 allocations and keeps scanning
the messages queued in flight; on the guide's pipeline that is about half the time.
:func:`relaxed_gc` collects less often for the duration of a run and puts everything
alive before it (input data, loaded modules) out of the collector's way.

Changing the collector is process-wide, so the library never does it on its own: a
run asks for it (``Pipeline.open(relax_gc=True)``, which the CLI does).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from ..errors import InvalidArgumentError

__all__ = ["RELAXED_THRESHOLD", "relaxed_gc"]

#: Allocations between young collections during a relaxed run (CPython's default: 700).
#: 50,000 lets a batch of 1,024 records (about 5 objects each) die before a collection
#: looks at it.
RELAXED_THRESHOLD: Final = 50_000


_depth = 0
_saved: tuple[int, ...] = ()


@contextmanager
def relaxed_gc(threshold: int = RELAXED_THRESHOLD) -> Iterator[None]:
    """Run the body with the youngest generation's threshold at ``threshold`` and every
    object alive on entry frozen (``gc.freeze``); restore both when the last of any
    overlapping relaxed runs leaves.

    Nothing is leaked: the collector still runs, and what was frozen is unfrozen on
    exit. Raises ValueError for a threshold below 1.
    """
    global _depth, _saved
    if threshold < 1:
        raise InvalidArgumentError(f"threshold must be at least 1, got {threshold}")
    if _depth == 0:
        _saved = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(threshold, *_saved[1:])
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            gc.set_threshold(*_saved)
            gc.unfreeze()
