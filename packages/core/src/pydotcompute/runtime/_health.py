"""Health: one line per kernel of what an operator needs to know, and the watchdog."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._instance import KernelInstance

__all__ = ["KernelHealth", "RuntimeHealth", "watch"]

# The watchdog looks this many times per shortest stall timeout.
_CHECKS_PER_TIMEOUT = 4


@dataclasses.dataclass(frozen=True)
class KernelHealth:
    """One kernel's health at a moment."""

    kernel_id: str
    state: str  #: lifecycle state's value
    healthy: bool  #: live (or cleanly stopped), not stalled, not failed
    stalled: bool  #: holds messages and has taken none for its stall_timeout
    restarts: int
    stalls: int
    errors: int
    input_queue_depth: int
    output_queue_depth: int
    dead_letters: int  #: messages of this kernel now in the dead letter queue
    last_error: str | None  #: repr of the exception that failed it, if any


@dataclasses.dataclass(frozen=True)
class RuntimeHealth:
    """``runtime.health()``: every kernel's health, and the runtime's verdict."""

    kernels: dict[str, KernelHealth]
    dead_letters: int  #: dead letters held, all kernels
    dead_letters_discarded: int  #: dead letters discarded because the queue was full

    @property
    def healthy(self) -> bool:
        return all(k.healthy for k in self.kernels.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "dead_letters": self.dead_letters,
            "dead_letters_discarded": self.dead_letters_discarded,
            "kernels": {kid: dataclasses.asdict(k) for kid, k in self.kernels.items()},
        }


async def watch(kernels: Callable[[], Iterable[KernelInstance]], interval: float) -> None:
    """Run the stall checks every ``interval`` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval)
        now = time.monotonic()
        for kernel in kernels():
            kernel.check_stall(now)


def watch_interval(stall_timeouts: Iterable[float]) -> float:
    """How often to check, given the kernels' stall timeouts."""
    return max(min(stall_timeouts) / _CHECKS_PER_TIMEOUT, 0.001)
