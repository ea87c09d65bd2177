"""Wire-check mode: every message a worker sends passes through its wire form first.

A pipeline's workers share nothing but messages, so any of them could run in another
process. This mode proves it for a run (``PipelineRun(..., wire_check=True)``): each
message is encoded and decoded before delivery, exactly what a receiver elsewhere would
get, with device arrays brought to the host through the sender's backend. A message
without a wire form fails the send (:class:`MessageValidationError`, naming the field),
so a live object in a message cannot slip through. It costs a copy per message: for
tests, not production.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..compute import to_host
from ..runtime import wire_round_trip

if TYPE_CHECKING:
    from ..compute import ComputeBackend
    from ..runtime import KernelContext

__all__ = ["WireCheckedContext"]


class WireCheckedContext:
    """The sending side of a :class:`KernelContext`, with every message round-tripped
    through its wire form (device arrays through ``to_host(backend, ...)``) before it is
    sent on."""

    __slots__ = ("_ctx", "_to_numpy")

    def __init__(self, ctx: KernelContext, backend: ComputeBackend) -> None:
        self._ctx = ctx
        self._to_numpy = functools.partial(to_host, backend)

    def _wire(self, msg: Any) -> Any:
        return wire_round_trip(msg, to_numpy=self._to_numpy)

    async def send(self, msg: Any) -> None:
        await self._ctx.send(self._wire(msg))

    async def send_many(self, msgs: Sequence[Any]) -> None:
        await self._ctx.send_many([self._wire(msg) for msg in msgs])

    async def send_to(self, kernel_id: str, msg: Any) -> None:
        await self._ctx.send_to(kernel_id, self._wire(msg))

    async def send_control(self, msg: Any, to: str | None = None) -> None:
        await self._ctx.send_control(self._wire(msg), to)
