"""Dead letters: messages a kernel could not process, kept for inspection and replay."""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from collections import deque
from typing import Any

from ..errors import InvalidArgumentError

__all__ = ["DeadLetter", "DeadLetterQueue", "DeadLetterReason"]

logger = logging.getLogger("pydotcompute")

DEFAULT_CAPACITY = 10_000


class DeadLetterReason(enum.Enum):
    """Why a message became a dead letter."""

    FAILED = "failed"  #: the kernel raised while it held the message
    STALLED = "stalled"  #: the kernel was restarted by the watchdog while it held the message
    EXPIRED = "expired"  #: its deadline passed while it waited in the input queue
    #: the kernel was told to stop while it held the message, and a send of its was cut
    #: off (a message whose result was already sent may be among them)
    STOPPED = "stopped"


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """One message that was not processed, and why."""

    kernel_id: str  #: the kernel it was sent to
    message: Any
    reason: DeadLetterReason
    error: BaseException | None  #: the kernel's exception, for FAILED
    at: float  #: when, as time.time()


class DeadLetterQueue:
    """The runtime's dead letters, oldest first, at most ``capacity`` of them.

    Past the capacity the oldest dead letter is discarded, counted in ``discarded``
    and logged: an unbounded list would be a memory leak in a pipeline that runs for
    days with a poisoned input.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if type(capacity) is not int or capacity < 1:
            raise InvalidArgumentError(
                f"dead letter capacity must be a positive int, got {capacity!r}"
            )
        self.capacity = capacity
        self.discarded = 0
        self._letters: deque[DeadLetter] = deque()

    def add(
        self,
        kernel_id: str,
        message: Any,
        reason: DeadLetterReason,
        error: BaseException | None = None,
    ) -> None:
        if len(self._letters) >= self.capacity:
            oldest = self._letters.popleft()
            self.discarded += 1
            logger.warning(
                "dead letter queue full (%d): discarded the oldest, a %s from kernel %r",
                self.capacity,
                type(oldest.message).__qualname__,
                oldest.kernel_id,
            )
        self._letters.append(DeadLetter(kernel_id, message, reason, error, time.time()))

    def select(self, kernel_id: str | None = None) -> list[DeadLetter]:
        """The dead letters of one kernel, or all, oldest first."""
        return [d for d in self._letters if kernel_id is None or d.kernel_id == kernel_id]

    def take(self, kernel_id: str | None = None) -> list[DeadLetter]:
        """Remove and return the dead letters (of one kernel, or all)."""
        taken = self.select(kernel_id)
        kept = [d for d in self._letters if not (kernel_id is None or d.kernel_id == kernel_id)]
        self._letters = deque(kept)
        return taken

    def __len__(self) -> int:
        return len(self._letters)
