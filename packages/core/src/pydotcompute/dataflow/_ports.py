"""How the workers of a pipeline are wired, and how a run knows it is over.

End of stream is tracked here rather than by counting marker messages alone: a
DROP_OLDEST queue may evict a marker, and a REJECT queue may refuse one. A producer
that has sent everything marks itself done in the run's :class:`StreamTracker` (its
sends have completed, so its data is already queued downstream), then sends an
:class:`EndOfStream` as a wake-up. A worker finishes once every one of its producers
is done and its input queue is empty: the marker only makes sure it looks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import StreamProtocolError

if TYPE_CHECKING:
    from ._rings import RingLink

__all__ = ["StageCounters", "StagePorts", "StreamTracker"]


class StreamTracker:
    """Per run: how many producers each worker still waits for, and which are done.

    Not thread-safe: one event loop, like the runtime.
    """

    def __init__(self) -> None:
        self._waiting: dict[str, int] = {}
        self._finished: set[str] = set()

    def expect(self, kernel_id: str, producers: int) -> None:
        """``kernel_id`` is fed by ``producers`` producers (the feeder counts as one)."""
        if producers < 1:
            raise ValueError(f"{kernel_id!r}: a worker needs at least one producer")
        self._waiting[kernel_id] = producers

    def producer_done(self, consumer: str) -> None:
        """One producer of ``consumer`` has sent everything it will."""
        left = self._waiting.get(consumer, 0)
        if left <= 0:
            raise StreamProtocolError(
                f"worker {consumer!r} got more end-of-stream signals than it has producers"
            )
        self._waiting[consumer] = left - 1

    def upstream_done(self, kernel_id: str) -> bool:
        """True once every producer of ``kernel_id`` is done."""
        return self._waiting.get(kernel_id, 0) == 0

    def finish(self, kernel_id: str) -> None:
        """``kernel_id`` has flushed and passed the end of stream on."""
        self._finished.add(kernel_id)

    def finished(self, kernel_id: str) -> bool:
        return kernel_id in self._finished


@dataclasses.dataclass
class StageCounters:
    """Record-level counts of one worker, for progress displays and reports.

    Runtime telemetry counts messages; these count records (a RecordBatch of 4096 rows
    is 4096 records).
    """

    records_in: int = 0  #: records taken from the input queue
    records_out: int = 0  #: records sent on
    records_failed: int = 0  #: records this worker turned into StageError
    records_rejected: int = 0  #: records a full REJECT queue downstream refused


@dataclasses.dataclass(frozen=True)
class StagePorts:
    """The wiring of one worker.

    ``downstream`` holds, per downstream stage, that stage's worker kernel ids; every
    output goes to each downstream stage, to one of its workers in turn. When
    ``routed`` is True the runtime already routes ``ctx.send`` that way (set with
    ``runtime.connect``); otherwise the loop addresses workers with ``ctx.send_to``.
    A worker with no downstream stage is a sink: its outputs go to its own output
    queue, where the pipeline reads them.

    ``native_out`` is True when every downstream stage computes with this stage's own
    backend: RecordBatch values then stay in the backend's arrays (on its device);
    otherwise, and always from a sink, they leave as numpy. ``rings`` holds, by
    downstream worker, the device ring that batches on the backend's device take to it
    (see :mod:`._rings`); ``rings_in`` holds, by :attr:`RingLink.name`, the rings
    upstream workers send this one RingRows through. ``wire_check`` passes every
    message this worker sends through its wire form first (see :mod:`._wire_check`).
    """

    downstream: tuple[tuple[str, ...], ...]
    routed: bool
    tracker: StreamTracker
    counters: StageCounters
    native_out: bool = False
    rings: Mapping[str, RingLink] = dataclasses.field(default_factory=dict)
    rings_in: Mapping[str, RingLink] = dataclasses.field(default_factory=dict)
    wire_check: bool = False

    @property
    def is_sink(self) -> bool:
        return not self.downstream

    @property
    def targets(self) -> tuple[str, ...]:
        """Every downstream worker, stage by stage (what a distributor picks from)."""
        return tuple(kid for group in self.downstream for kid in group)
