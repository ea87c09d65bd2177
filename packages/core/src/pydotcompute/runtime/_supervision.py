"""Restart policies: what happens to a kernel whose function raises (or stalls)."""

from __future__ import annotations

import dataclasses
import math
from collections import deque

from ..errors import InvalidArgumentError

__all__ = ["RestartPolicy", "RestartTracker"]


@dataclasses.dataclass(frozen=True)
class RestartPolicy:
    """When a failed kernel is started again.

    ``max_restarts`` restarts are allowed within any ``window`` seconds; one more failure
    and the kernel is FAILED for good. The n-th restart in a row waits
    ``backoff * backoff_factor ** (n - 1)`` seconds, at most ``max_backoff``.
    ``restart_on_stall`` also restarts a kernel the watchdog finds stalled.
    The default policy never restarts.
    """

    max_restarts: int = 0
    window: float = 60.0
    backoff: float = 0.0
    backoff_factor: float = 2.0
    max_backoff: float = 5.0
    restart_on_stall: bool = False

    def __post_init__(self) -> None:
        if type(self.max_restarts) is not int or self.max_restarts < 0:
            raise InvalidArgumentError(
                f"max_restarts must be an int >= 0, got {self.max_restarts!r}"
            )
        for name in ("window", "backoff", "max_backoff"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise InvalidArgumentError(f"{name} must be a finite number >= 0, got {value!r}")
        if not (isinstance(self.backoff_factor, (int, float)) and self.backoff_factor >= 1):
            raise InvalidArgumentError(f"backoff_factor must be >= 1, got {self.backoff_factor!r}")
        if type(self.restart_on_stall) is not bool:
            raise InvalidArgumentError(
                f"restart_on_stall must be true or false, got {self.restart_on_stall!r}"
            )

    @classmethod
    def never(cls) -> RestartPolicy:
        """Never restart: the first failure is final (the default)."""
        return cls()

    @classmethod
    def on_failure(
        cls,
        max_restarts: int = 3,
        window: float = 60.0,
        backoff: float = 0.05,
        backoff_factor: float = 2.0,
        max_backoff: float = 5.0,
        restart_on_stall: bool = False,
    ) -> RestartPolicy:
        """Restart after a failure, up to ``max_restarts`` times within ``window`` s."""
        return cls(max_restarts, window, backoff, backoff_factor, max_backoff, restart_on_stall)

    def delay(self, consecutive: int) -> float:
        """Seconds to wait before the ``consecutive``-th restart in a row (1-based)."""
        return min(self.backoff * self.backoff_factor ** max(consecutive - 1, 0), self.max_backoff)


class RestartTracker:
    """Counts one kernel's restarts against its policy's sliding window."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self.total = 0
        self._recent: deque[float] = deque()

    def next_delay(self, now: float) -> float | None:
        """The backoff before restarting at time ``now``, or None when the limit is hit."""
        window = self.policy.window
        while self._recent and now - self._recent[0] > window:
            self._recent.popleft()
        if len(self._recent) >= self.policy.max_restarts:
            return None
        self._recent.append(now)
        self.total += 1
        return self.policy.delay(len(self._recent))
