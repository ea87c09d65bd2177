"""The shutdown report: what each kernel left behind when the runtime stopped."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["KernelLeftovers", "ShutdownReport"]


@dataclasses.dataclass(frozen=True)
class KernelLeftovers:
    """Messages one kernel still held when it stopped. Nothing here was processed
    (``unprocessed``) or read by anyone (``unread``, ``undeliverable``)."""

    kernel_id: str
    state: str  #: the kernel's final state
    unprocessed: tuple[Any, ...]  #: still in its input queue
    unread: tuple[Any, ...]  #: results in its output queue that nobody received
    undeliverable: tuple[Any, ...]  #: sends cut off because the receiver stopped
    error: BaseException | None  #: why it failed, if it did
    stuck: bool  #: it ignored termination and cancellation and was abandoned
    #: it did not stop by itself within the grace period and was cancelled (its loop
    #: does not look at ``ctx.should_terminate`` often enough)
    cancelled: bool = False

    @property
    def count(self) -> int:
        return len(self.unprocessed) + len(self.unread) + len(self.undeliverable)


@dataclasses.dataclass(frozen=True)
class ShutdownReport:
    """Returned by ``runtime.shutdown()`` and kept as ``runtime.shutdown_report``."""

    kernels: dict[str, KernelLeftovers]
    drained: bool  #: every active kernel emptied its input queue within the timeout
    duration_s: float  #: how long the shutdown took

    @property
    def leftover_count(self) -> int:
        """Messages left behind, all kernels together."""
        return sum(k.count for k in self.kernels.values())

    @property
    def clean(self) -> bool:
        """Nothing left behind, nothing failed, nothing stuck."""
        return self.leftover_count == 0 and not any(
            k.error is not None or k.stuck for k in self.kernels.values()
        )

    def summary(self) -> str:
        """One line per kernel that left something behind."""
        lines = []
        for k in self.kernels.values():
            if k.count or k.error is not None or k.stuck:
                lines.append(
                    f"{k.kernel_id} ({k.state}): {len(k.unprocessed)} unprocessed, "
                    f"{len(k.unread)} unread, {len(k.undeliverable)} undeliverable"
                    + (f", failed: {k.error!r}" if k.error is not None else "")
                    + (", stuck" if k.stuck else "")
                )
        return "\n".join(lines) or "clean: nothing left behind"
