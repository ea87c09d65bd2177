"""The context a kernel function receives: its mailbox and its lifecycle flags."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError, QueueClosedError
from ._queue import NOTHING

if TYPE_CHECKING:
    from ._instance import KernelInstance
    from ._queue import MessageQueue
    from ._ring_runtime import RingKernelRuntime

__all__ = ["KernelContext"]

# Messages a kernel takes in a row before it yields to the event loop.
BURST = 64

_set = object.__setattr__  # KernelContext's own writes (its __setattr__ refuses users')


class KernelContext:
    """Handed to a kernel function as ``ctx``; valid for the kernel's lifetime.

    ``receive`` hands out nothing while the kernel is not ACTIVE, even to a loop that
    never checks ``is_active``; once termination is requested it raises
    :class:`QueueClosedError` instead of waiting, so a loop that checks
    ``should_terminate`` ends promptly whatever it catches.

    Attributes (read-only):
        should_terminate: True once the runtime asked this kernel to stop: leave the loop.
        is_active: True while the kernel is ACTIVE (launched and activated, not paused).
        kernel_id: the id the kernel was launched under.
        runtime: the :class:`RingKernelRuntime` it runs in.
    """

    # should_terminate and is_active are plain attributes, kept up to date by the kernel
    # (see mirror), not properties: a kernel's loop reads them for every message.
    __slots__ = ("_input", "_instance", "is_active", "kernel_id", "runtime", "should_terminate")

    _input: MessageQueue[Any]
    _instance: KernelInstance
    is_active: bool
    kernel_id: str
    runtime: RingKernelRuntime
    should_terminate: bool

    def __init__(self, instance: KernelInstance, runtime: RingKernelRuntime) -> None:
        _set(self, "_instance", instance)
        _set(self, "_input", instance.input)
        _set(self, "kernel_id", instance.kernel_id)
        _set(self, "runtime", runtime)
        self.mirror()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"KernelContext.{name} is read-only")

    def mirror(self) -> None:
        """Copy the kernel's lifecycle flags (the kernel calls this on every change)."""
        instance = self._instance
        _set(self, "is_active", instance.is_active)
        _set(self, "should_terminate", instance.terminate_requested)

    @property
    def counts(self) -> dict[str, int]:
        """The kernel's own counters: add to them (``ctx.counts["records"] = n``); the
        runtime reports a copy in ``runtime.get_telemetry(kernel_id).counts``. They
        last across restarts."""
        return self._instance.counts

    async def wait_active(self, timeout: float | None = None) -> None:
        """Wait until the kernel is ACTIVE or asked to terminate (returns either way)."""
        self._instance.holding = ()
        await self._instance.wait_active(timeout)

    async def receive(self, timeout: float | None = None) -> Any:
        """The next message from the input queue.

        Raises QueueTimeoutError (a TimeoutError) after ``timeout`` seconds, and
        QueueClosedError once the kernel is told to terminate.
        """
        instance = self._instance
        if instance.burst >= BURST:
            # Let the other tasks run now and then: a kernel that always finds input
            # would otherwise run until its output fills, and the whole burst of
            # messages falls out of the CPU caches before the next stage sees it.
            instance.burst = 0
            await asyncio.sleep(0)
        if not self.should_terminate:
            msg = self._input.take()  # the hot path: no timer, and no suspension
            if msg is not NOTHING:
                instance.burst += 1
                instance.holding = (msg,)
                return msg
        # Nothing to take: wait, in this coroutine (a helper's would cost one per wait).
        instance.holding = ()  # back for more: the previous message is done
        instance.burst = 0  # it waits (or raises) now: the run of takes ends
        if self.should_terminate:
            # Yield first: a loop that swallows this error must not starve the event loop.
            await asyncio.sleep(0)
            raise QueueClosedError(f"kernel {self.kernel_id!r} is terminating")
        msg = await self._input.get(timeout)
        instance.holding = (msg,)
        return msg

    async def receive_batch(self, max_items: int, timeout: float | None = None) -> list[Any]:
        """Wait for one message (as :meth:`receive`), then take whatever else is queued,
        up to ``max_items`` in all. Never returns an empty list."""
        if type(max_items) is not int or max_items < 1:
            raise InvalidArgumentError(
                f"receive_batch: max_items must be a positive int, got {max_items!r}"
            )
        first = await self.receive(timeout)
        if max_items == 1:
            return [first]
        batch = [first]
        batch.extend(self._input.get_batch_nowait(max_items - 1))
        self._instance.holding = batch
        return batch

    async def send(self, msg: Any) -> None:
        """Send ``msg`` on: along this kernel's routes if ``runtime.connect`` set any,
        else into its own output queue (read with ``runtime.receive``). Honours the
        receiving queue's backpressure."""
        if not self._instance.emit_if_room(msg):
            await self._instance.emit(msg)

    async def send_many(self, msgs: Sequence[Any]) -> None:
        """Send ``msgs`` on, in order: the same as ``send`` for each (a round-robin
        route deals them out one at a time), at one call's cost when there is room."""
        await self._instance.emit_many(msgs)

    async def send_to(self, kernel_id: str, msg: Any) -> None:
        """Send ``msg`` straight into kernel ``kernel_id``'s input queue."""
        await self.runtime.deliver(kernel_id, msg, sender=self.kernel_id)
        self._instance.sent += 1

    async def send_control(self, msg: Any, to: str | None = None) -> None:
        """Send control message ``msg`` (an end-of-stream marker: news, not data) past
        backpressure, into kernel ``to``'s input queue, or when ``to`` is None along this
        kernel's routes or into its own output queue. It is never refused for room, never
        evicted and never waits (see ``MessageQueue.put_control``); it raises only what a
        send to a kernel that takes no more messages raises."""
        if to is None:
            self._instance.emit_control(msg)
        else:
            await self.runtime.send_control(to, msg, sender=f"kernel {self.kernel_id!r}")
            self._instance.sent += 1

    def __repr__(self) -> str:
        return f"<KernelContext {self.kernel_id!r} {self._instance.state.value}>"
