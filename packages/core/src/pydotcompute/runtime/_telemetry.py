"""Per-kernel telemetry: counters kept by the queues and the kernel, read as snapshots.

Besides the runtime's own message counts, a kernel reports what it counts itself through
``ctx.counts`` (a pipeline worker counts records there): the snapshot carries a copy, so
a reader never holds the kernel's live state.

Counting costs a few integer increments and one clock read per message, so it is
always on; ``enable_telemetry=False`` only stops collecting queue-wait samples.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["KernelTelemetry", "wait_percentiles_us"]


@dataclasses.dataclass(frozen=True)
class KernelTelemetry:
    """A snapshot of one kernel's traffic since launch."""

    kernel_id: str
    state: str  #: the lifecycle state's value, e.g. "active"
    messages_received: int  #: offered to the input queue: accepted or rejected
    messages_processed: int  #: taken by the kernel (and not dead-lettered)
    messages_sent: int  #: sent on by the kernel (own output queue or routes)
    messages_dropped: int  #: evicted from the input queue by DROP_OLDEST
    messages_rejected: int  #: refused by the full input queue (REJECT)
    messages_expired: int  #: deadline passed while queued: not processed, dead-lettered
    messages_dead_lettered: int  #: taken, then dead-lettered by a failure or a stall
    output_dropped: int  #: evicted from the output queue by DROP_OLDEST
    output_rejected: int  #: refused by the full output queue (REJECT)
    errors: int  #: times the kernel function raised
    restarts: int  #: times the kernel was restarted by its policy
    stalls: int  #: times the watchdog found it stalled
    input_queue_depth: int  #: messages waiting in the input queue now
    output_queue_depth: int  #: messages waiting in the output queue now
    active_seconds: float  #: time spent ACTIVE
    throughput: float  #: messages_processed / active_seconds, msg/s
    queue_wait_p50_us: float  #: median time a message waited in the input queue, µs
    queue_wait_p99_us: float  #: 99th percentile of that wait, µs (recent messages)
    #: What the kernel counted itself (``ctx.counts``), e.g. a pipeline worker's records.
    counts: Mapping[str, int] = dataclasses.field(default_factory=dict)

    @property
    def books_balance(self) -> bool:
        """Every message offered to the input queue is accounted for: received ==
        processed + queued + dropped + rejected + expired + dead-lettered."""
        return self.messages_received == (
            self.messages_processed
            + self.input_queue_depth
            + self.messages_dropped
            + self.messages_rejected
            + self.messages_expired
            + self.messages_dead_lettered
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return dataclasses.asdict(self)


def wait_percentiles_us(samples: Iterable[float]) -> tuple[float, float]:
    """(p50, p99) in microseconds of wait samples given in seconds; NaN when empty."""
    values = np.sort(np.fromiter(samples, dtype=np.float64))
    if values.size == 0:
        return float("nan"), float("nan")
    return _linear_quantile(values, 0.50) * 1e6, _linear_quantile(values, 0.99) * 1e6


def _linear_quantile(ordered: npt.NDArray[np.float64], q: float) -> float:
    """``numpy.percentile``'s default ("linear") quantile of sorted values, written out:
    the first call of ``numpy.percentile`` imports ``numpy.ma`` (8 ms of every command's
    exit, where the report reads the telemetry)."""
    at = q * (ordered.size - 1)
    lo = int(at)
    hi = min(lo + 1, ordered.size - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (at - lo))
