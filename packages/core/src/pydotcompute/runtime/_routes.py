"""Kernel-to-kernel routes: what a source kernel sends goes straight into the input
queues of its destinations, with no forwarding task and no trip through the host."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError
from ._enums import parse_enum

if TYPE_CHECKING:
    from ._instance import KernelInstance

__all__ = ["Route", "RouteMode"]


class RouteMode(enum.Enum):
    """How a route with several destinations shares messages out."""

    ROUND_ROBIN = "round_robin"  #: each message to the next destination in turn
    BROADCAST = "broadcast"  #: every message to every destination

    @classmethod
    def parse(cls, value: RouteMode | str) -> RouteMode:
        """Accept a member or its value in any case (``"broadcast"``)."""
        return parse_enum(cls, value, "route mode")


class Route:
    """The outgoing route of one source kernel."""

    __slots__ = ("_next", "destinations", "mode", "single", "source_id")

    def __init__(self, source_id: str, mode: RouteMode) -> None:
        self.source_id = source_id
        self.mode = mode
        self.destinations: list[KernelInstance] = []
        self.single: KernelInstance | None = None  # the destination, when there is one
        self._next = 0

    def add(self, destination: KernelInstance) -> None:
        if destination in self.destinations:
            raise InvalidArgumentError(
                f"kernel {self.source_id!r} is already connected to {destination.kernel_id!r}"
            )
        self.destinations.append(destination)
        self.single = destination if len(self.destinations) == 1 else None

    async def deliver(self, msg: Any) -> None:
        """Put ``msg`` into the destination(s), honouring each one's backpressure.

        Round robin moves on to the next destination only after a delivery succeeds,
        so a rejected message can be retried at the same destination.
        """
        destinations = self.destinations
        if self.mode is RouteMode.ROUND_ROBIN:
            index = self._next
            await destinations[index].accept(msg, sender=self.source_id)
            self._next = (index + 1) % len(destinations)
        else:
            for destination in destinations:
                await destination.accept(msg, sender=self.source_id)

    def __repr__(self) -> str:
        names = ", ".join(d.kernel_id for d in self.destinations)
        return f"<Route {self.source_id!r} -> [{names}] {self.mode.value}>"
