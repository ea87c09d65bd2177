"""What a run's metrics endpoint serves: snapshots of its telemetry, taken on its loop.

Nothing here runs per message. The counters are the runtime's own (read when a scrape
asks); the one figure the telemetry does not already hold, the distribution of queue
waits, is built from the wait samples every input queue keeps anyway (the last
``WAIT_SAMPLES`` waits): a task folds the samples taken since it last looked into
cumulative histogram buckets, often enough that the samples rarely run out. When they
do (more messages per fold interval than the queue keeps), the waits not seen are
counted as unsampled, so the histogram's count plus the unsampled is every message
taken.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import itertools
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from ..dataflow import RECORD_COUNTS, member_count
from ..runtime import KernelTelemetry
from ._telemetry import StageTelemetry

if TYPE_CHECKING:
    from ._run import PipelineRun

__all__ = [
    "FOLD_INTERVAL_S",
    "WAIT_BUCKETS_S",
    "KernelMetrics",
    "MetricsSnapshot",
    "RunMetrics",
    "WaitHistogram",
]

#: Upper bounds (seconds) of the queue-wait histogram's buckets; +Inf comes after.
WAIT_BUCKETS_S: Final = (
    1e-5,
    2.5e-5,
    5e-5,
    1e-4,
    2.5e-4,
    5e-4,
    1e-3,
    2.5e-3,
    5e-3,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
#: How often the waits taken since the last fold go into the histograms: a queue keeps
#: 4,096 samples, so nothing goes unsampled below ~80,000 messages/s per worker.
FOLD_INTERVAL_S: Final = 0.05
# How long a scrape waits for the run's loop to take a snapshot before it serves the
# last one (a stage that holds the loop, say); the age gauge then says how old it is.
_SNAPSHOT_WAIT_S: Final = 2.0


class WaitHistogram:
    """Cumulative queue-wait buckets of one input queue, fed from its wait samples."""

    __slots__ = ("bounds", "counts", "seen", "sum", "unsampled")

    def __init__(self, bounds: Sequence[float] = WAIT_BUCKETS_S) -> None:
        self.bounds: npt.NDArray[np.float64] = np.asarray(bounds, dtype=np.float64)
        #: waits per bucket (not cumulative); the last is above every bound
        self.counts: npt.NDArray[np.int64] = np.zeros(len(bounds) + 1, dtype=np.int64)
        self.sum = 0.0  #: seconds, all folded waits together
        self.seen = 0  #: messages the queue had handed out at the last fold
        self.unsampled = 0  #: messages taken whose wait was no longer in the samples

    def fold(self, taken: int, samples: Sequence[float]) -> None:
        """Take in the waits of the messages taken since the last fold: the newest
        ``taken - seen`` of ``samples`` (the queue's record, newest last), or as many
        as it still holds."""
        new = taken - self.seen
        if new <= 0:
            return
        self.seen = taken
        kept = min(new, len(samples))
        self.unsampled += new - kept
        if not kept:
            return
        values = np.fromiter(itertools.islice(reversed(samples), kept), np.float64, kept)
        self.counts += np.bincount(
            np.searchsorted(self.bounds, values, side="left"), minlength=len(self.counts)
        )
        self.sum += float(values.sum())

    @property
    def count(self) -> int:
        """Waits folded in (messages taken, less the unsampled)."""
        return int(self.counts.sum())

    def buckets(self) -> list[tuple[float, int]]:
        """(upper bound, waits at or below it), cumulative, ending with +Inf."""
        cumulative = np.cumsum(self.counts).tolist()
        return list(zip([*self.bounds.tolist(), float("inf")], cumulative, strict=True))


@dataclasses.dataclass(frozen=True)
class KernelMetrics:
    """One worker kernel at a snapshot."""

    stage: str  #: the stage it was launched for (a fused chain's first)
    #: the stages it runs: its own, or every member of its fused chain
    members: tuple[str, ...]
    telemetry: KernelTelemetry
    #: member stage -> its record counts (RECORD_COUNTS) in this worker
    records: Mapping[str, Mapping[str, int]]
    wait_buckets: tuple[tuple[float, int], ...]  #: cumulative, see WaitHistogram
    wait_sum_s: float
    wait_count: int
    wait_unsampled: int


@dataclasses.dataclass(frozen=True)
class MetricsSnapshot:
    """Everything one scrape serves, taken at one moment on the run's loop."""

    pipeline: str
    #: "starting" (workers not all active yet), "running", "finished" (every sink
    #: ended its stream), or "stopped" (closed before that)
    state: str
    seconds: float  #: the run's wall time so far
    records_fed: int
    records_rejected_at_input: int
    stages: Mapping[str, StageTelemetry]
    kernels: Mapping[str, KernelMetrics]
    taken_at: float  #: time.monotonic() when it was taken

    @classmethod
    def empty(cls, pipeline: str) -> MetricsSnapshot:
        return cls(pipeline, "starting", 0.0, 0, 0, {}, {}, time.monotonic())


class RunMetrics:
    """Snapshots of one :class:`~pydotcompute.PipelineRun` for its metrics endpoint.

    :meth:`start` on the run's loop once its workers are launched; :meth:`snapshot`
    on that loop, or :meth:`snapshot_threadsafe` from any other thread (an HTTP
    server's); :meth:`stop` at the end keeps a last snapshot for late scrapes.
    """

    def __init__(self, run: PipelineRun, *, fold_interval_s: float = FOLD_INTERVAL_S) -> None:
        self.run = run
        self.fold_interval_s = fold_interval_s
        self._waits: dict[str, WaitHistogram] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._folder: asyncio.Task[None] | None = None
        self._last = MetricsSnapshot.empty(run.plan.name)
        self._stopped = False

    def start(self) -> None:
        """Begin folding queue waits (on the run's loop; the workers are launched)."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._waits = {kid: WaitHistogram() for kid in self.run.kernel_ids}
        self._folder = self._loop.create_task(self._fold_forever())

    async def stop(self) -> None:
        """Stop folding; take the last snapshot, served from now on."""
        if self._folder is not None:
            self._folder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._folder
            self._folder = None
        if self._loop is not None and not self._stopped:
            self._last = self.snapshot()
        self._stopped = True

    async def _fold_forever(self) -> None:
        while True:
            await asyncio.sleep(self.fold_interval_s)
            self.fold()

    def fold(self) -> None:
        """Fold every worker's new wait samples into its histogram (on the loop)."""
        input_waits = self.run.runtime.input_waits
        for kid, histogram in self._waits.items():
            histogram.fold(*input_waits(kid))

    def snapshot(self) -> MetricsSnapshot:
        """The run's figures now (on the run's loop); the last one once stopped."""
        run = self.run
        if self._stopped or self._loop is None or run.started_at is None:
            return self._last
        self.fold()
        runtime = run.runtime
        kernels: dict[str, KernelMetrics] = {}
        for group in run.groups:
            fused = len(group) > 1
            for kid in run.kernel_ids_of(group[0]):
                telemetry = runtime.get_telemetry(kid)
                waits = self._waits[kid]
                records = {
                    name: {
                        count: member_count(telemetry.counts, name, count)
                        if fused
                        else telemetry.counts.get(count, 0)
                        for count in RECORD_COUNTS
                    }
                    for name in group
                }
                kernels[kid] = KernelMetrics(
                    stage=group[0],
                    members=group,
                    telemetry=telemetry,
                    records=records,
                    wait_buckets=tuple(waits.buckets()),
                    wait_sum_s=waits.sum,
                    wait_count=waits.count,
                    wait_unsampled=waits.unsampled,
                )
        stages = run.telemetry()
        snapshot = MetricsSnapshot(
            pipeline=run.plan.name,
            state=run.outcome or "running",
            seconds=next(iter(stages.values())).seconds if stages else 0.0,
            records_fed=run.records_fed,
            records_rejected_at_input=run.records_rejected_at_input,
            stages=stages,
            kernels=kernels,
            taken_at=time.monotonic(),
        )
        self._last = snapshot
        return snapshot

    def snapshot_threadsafe(self, timeout: float = _SNAPSHOT_WAIT_S) -> MetricsSnapshot:
        """:meth:`snapshot` from another thread: taken on the run's loop, or the last
        one when the loop does not answer within ``timeout`` seconds (or is gone)."""
        loop = self._loop
        if loop is None or self._stopped:
            return self._last
        if threading.get_ident() == self._loop_thread:
            return self.snapshot()
        future: concurrent.futures.Future[MetricsSnapshot] = concurrent.futures.Future()

        def take() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(self.snapshot())
            except BaseException as exc:  # handed to the scraping thread, which raises it
                future.set_exception(exc)

        try:
            loop.call_soon_threadsafe(take)
        except RuntimeError:  # the loop is closed: the run is over
            return self._last
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return self._last
