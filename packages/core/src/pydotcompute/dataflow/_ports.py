"""How the workers of a pipeline are wired: each worker's ports.

Ports are plain data (kernel ids, flags), so a worker could run anywhere its messages
reach; only the device rings (``rings``, ``rings_in``) are objects, and they link workers
that share a device. A worker learns that its input is complete from messages alone: each
of its ``producers`` sends it an :class:`EndOfStream` after everything else (see
:mod:`._stream_end`). It reports its record counts through its kernel's telemetry
(``ctx.counts``), not through an object here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._rings import RingLink

__all__ = ["StagePorts"]


@dataclasses.dataclass(frozen=True)
class StagePorts:
    """The wiring of one worker.

    ``producers`` names every kernel that feeds this worker (``"<feeder>"`` for the
    pipeline's input): the worker's input is complete once each has sent its
    :class:`EndOfStream`.

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
    producers: tuple[str, ...]
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
