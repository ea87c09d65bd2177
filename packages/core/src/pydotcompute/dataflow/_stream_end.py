"""How a worker learns, from messages alone, that its input is complete.

Every producer of a worker (an upstream worker, or the pipeline's feeder) sends it one
:class:`EndOfStream` after everything else. Markers are control messages: queues never
refuse or evict them (``put_control``), and one sender's messages arrive in the order it
sent them, so once a worker holds a marker from each of its producers and its queue is
empty, it has seen all of its input.
"""

from __future__ import annotations

from typing import Any

from ..errors import StreamProtocolError
from ._records import EndOfStream

__all__ = ["InputEnd"]


class InputEnd:
    """One worker's account of its producers' end-of-stream markers, and whether it has
    passed the end on itself. The stage keeps it, so that a worker restarted by its
    policy still knows which producers have ended (the markers it took are gone from its
    queue)."""

    __slots__ = ("_ended", "finished", "producers", "worker")

    def __init__(self, worker: str, producers: tuple[str, ...]) -> None:
        self.worker = worker
        self.producers = frozenset(producers)
        self._ended: set[str] = set()
        #: True once the worker has flushed and sent its own markers on.
        self.finished = False

    @property
    def upstream_done(self) -> bool:
        """True once every producer has sent its marker."""
        return len(self._ended) == len(self.producers)

    def take_markers(self, batch: list[Any], markers: list[EndOfStream]) -> None:
        """Record ``markers`` (the EndOfStream messages of ``batch``) and take them out of
        ``batch`` in place: the list is what the kernel holds, so a crash dead-letters
        data only, and a marker counts even if the worker crashes on this batch.

        Raises:
            StreamProtocolError: a marker comes from a kernel that is no producer of this
                worker.
        """
        for marker in markers:
            if marker.source not in self.producers:
                expected = ", ".join(sorted(map(repr, self.producers))) or "none"
                raise StreamProtocolError(
                    f"worker {self.worker!r} got an end-of-stream marker from "
                    f"{marker.source!r}, which is not one of its producers ({expected})"
                )
            self._ended.add(marker.source)
        batch[:] = [msg for msg in batch if type(msg) is not EndOfStream]
