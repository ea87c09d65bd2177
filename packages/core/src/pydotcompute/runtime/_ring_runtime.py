"""The runtime: launches kernels, moves messages between the host and them, and shuts
everything down without losing track of a single message."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType, TracebackType
from typing import Any, NoReturn

from ..errors import (
    InvalidArgumentError,
    KernelAlreadyExistsError,
    KernelNotFoundError,
    KernelStateError,
    MessageTypeError,
)
from ._dead_letters import DEFAULT_CAPACITY, DeadLetter, DeadLetterQueue
from ._health import KernelHealth, RuntimeHealth, watch, watch_interval
from ._instance import KernelInstance
from ._kernel import KernelSpec, KernelState, spec_for
from ._loop_watchdog import DEFAULT_LOOP_BLOCK_S, LoopWatchdog
from ._queue import NOTHING, QueueStatistics
from ._report import KernelLeftovers, ShutdownReport
from ._routes import Route, RouteMode
from ._telemetry import KernelTelemetry

__all__ = ["RingKernelRuntime"]

logger = logging.getLogger("pydotcompute")

DEFAULT_DRAIN_TIMEOUT_S = 5.0
DEFAULT_GRACE_S = 1.0
_DRAIN_STEP_S = 0.05


class RingKernelRuntime:
    """Hosts ring kernels on the running asyncio event loop.

    Use it as ``async with RingKernelRuntime() as runtime:``; leaving the block calls
    :meth:`shutdown`, which stops new sends, lets active kernels finish what is queued
    (up to ``drain_timeout`` seconds), stops them, and reports whatever was left.

    A runtime lives in one event loop, the one its first kernel is launched in. From then
    until shutdown a watchdog thread logs a warning, naming the kernel and its stack, when
    that loop has not run for ``loop_block_threshold`` seconds (a kernel computing without
    awaiting); ``None`` turns it off.
    """

    def __init__(
        self,
        *,
        enable_telemetry: bool = True,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT_S,
        grace_period: float = DEFAULT_GRACE_S,
        dead_letter_capacity: int = DEFAULT_CAPACITY,
        loop_block_threshold: float | None = DEFAULT_LOOP_BLOCK_S,
    ) -> None:
        if loop_block_threshold is not None and not (
            isinstance(loop_block_threshold, int | float)
            and math.isfinite(loop_block_threshold)
            and loop_block_threshold > 0
        ):
            raise InvalidArgumentError(
                "RingKernelRuntime: loop_block_threshold must be a positive number of "
                f"seconds or None (no watchdog), got {loop_block_threshold!r}"
            )
        self.loop_block_threshold = loop_block_threshold
        self._loop_watchdog: LoopWatchdog | None = None
        self.enable_telemetry = enable_telemetry
        self.drain_timeout = drain_timeout
        self.grace_period = grace_period
        self._kernels: dict[str, KernelInstance] = {}
        self._dead_letters = DeadLetterQueue(dead_letter_capacity)
        self._watchdog: asyncio.Task[None] | None = None
        self._closing = False
        self.shutdown_report: ShutdownReport | None = None

    async def __aenter__(self) -> RingKernelRuntime:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    # -- lifecycle --------------------------------------------------------------------

    async def launch(
        self, kernel_id: str, func: Callable[..., Any] | None = None, **settings: Any
    ) -> None:
        """Start kernel ``kernel_id``: the ``@ring_kernel`` registered under that id, or
        ``func`` (decorated or a plain ``async def kernel(ctx)``) under this new id.
        ``func`` keeps its decorator's settings unless ``settings`` override them
        (``queue_size``, ``input_queue_size``, ``output_queue_size``, ``backpressure``,
        ``input_type``, ``output_type``, ``ordering``). The kernel starts LAUNCHED:
        it takes messages only once activated."""
        if self._closing:
            raise KernelStateError(f"cannot launch {kernel_id!r}: the runtime is shut down")
        if kernel_id in self._kernels:
            raise KernelAlreadyExistsError(
                f"kernel {kernel_id!r} is already launched; launch the function under "
                "another id to run a second instance"
            )
        spec = spec_for(kernel_id, func, settings)
        self._check_loop()
        if self._loop_watchdog is None and self.loop_block_threshold is not None:
            self._loop_watchdog = LoopWatchdog(self.loop_block_threshold)
        self._kernels[kernel_id] = KernelInstance(
            spec, self, self._dead_letters, record_waits=self.enable_telemetry
        )
        if spec.stall_timeout is not None:
            self._restart_watchdog()

    def _restart_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        timeouts = [k.spec.stall_timeout for k in self._kernels.values() if k.spec.stall_timeout]
        self._watchdog = asyncio.get_running_loop().create_task(
            watch(self._kernels.values, watch_interval(timeouts)), name="pydotcompute-watchdog"
        )

    async def activate(self, kernel_id: str) -> None:
        """LAUNCHED -> ACTIVE: the kernel starts taking messages."""
        self._get(kernel_id).activate()

    async def deactivate(self, kernel_id: str) -> None:
        """ACTIVE -> DEACTIVATED: the kernel takes nothing; messages keep queueing."""
        self._get(kernel_id).deactivate()

    async def reactivate(self, kernel_id: str) -> None:
        """DEACTIVATED -> ACTIVE."""
        self._get(kernel_id).reactivate()

    async def terminate(
        self, kernel_id: str, *, drain: bool = False, timeout: float | None = None
    ) -> None:
        """Stop a kernel. With ``drain=True`` it first refuses new messages and waits
        (up to ``timeout`` seconds, default the runtime's drain timeout) until the
        kernel has taken everything from its input queue. Terminating a stopped or
        failed kernel does nothing."""
        instance = self._get(kernel_id)
        if instance.terminate_requested or instance.state is KernelState.FAILED:
            await instance.join(self.grace_period)
            return
        if drain:
            instance.close_input()
            if instance.state is KernelState.ACTIVE:
                limit = self.drain_timeout if timeout is None else timeout
                if not await instance.wait_idle(limit):
                    logger.warning(
                        "kernel %r did not drain within %.3g s; %d messages left",
                        kernel_id,
                        limit,
                        len(instance.input),
                    )
        instance.request_termination()
        await instance.join(self.grace_period)

    def state(self, kernel_id: str) -> KernelState:
        """The kernel's lifecycle state."""
        return self._get(kernel_id).state

    def spec(self, kernel_id: str) -> KernelSpec:
        """The settings kernel ``kernel_id`` runs with: its decorator's, with what
        :meth:`launch` overrode."""
        return self._get(kernel_id).spec

    def idle(self, kernel_id: str) -> bool:
        """True when the kernel holds no message: none queued for it, none in hand (or
        its task has ended). A pipeline has settled once every kernel is idle."""
        return self._get(kernel_id).idle

    def pending(self, kernel_id: str) -> list[Any]:
        """The messages waiting in the kernel's input queue, oldest first (a copy)."""
        return self._get(kernel_id).input.snapshot()

    def counts(self, kernel_id: str) -> Mapping[str, int]:
        """Kernel ``kernel_id``'s own counters (``ctx.counts``), live and read-only: no
        copy, for a caller that looks often (``get_telemetry`` snapshots everything)."""
        return MappingProxyType(self._get(kernel_id).counts)

    def take_unread(self, kernel_id: str) -> list[Any]:
        """Take out what stopped kernel ``kernel_id`` sent that nobody received: its
        output queue, then the sends that termination cut off, oldest first. Taken,
        they are no longer left behind in the shutdown report.

        Raises:
            KernelStateError: the kernel is still running (it could send more).
        """
        instance = self._get(kernel_id)
        if not instance.task.done():
            raise KernelStateError(
                f"take_unread({kernel_id!r}): the kernel is still running; terminate it first"
            )
        taken = instance.output.get_batch_nowait(len(instance.output)) if instance.output else []
        taken += instance.abandoned
        instance.abandoned = []
        return taken

    def queue_statistics(self, kernel_id: str) -> tuple[QueueStatistics, QueueStatistics]:
        """Snapshots of the kernel's input and output queues, in that order."""
        instance = self._get(kernel_id)
        return instance.input.statistics(), instance.output.statistics()

    @property
    def kernel_ids(self) -> list[str]:
        """Ids of every kernel launched in this runtime, in launch order."""
        return list(self._kernels)

    # -- traffic ----------------------------------------------------------------------

    async def send(self, kernel_id: str, msg: Any, timeout: float | None = None) -> None:
        """Put ``msg`` into kernel ``kernel_id``'s input queue, under its backpressure:
        BLOCK waits for room (QueueTimeoutError after ``timeout``), REJECT raises
        QueueFullError, DROP_OLDEST evicts the oldest queued message. Raises
        KernelFailedError if the kernel failed, KernelStateError if it stopped."""
        instance = self._kernels.get(kernel_id)
        if instance is None or self._closing:
            self._refuse_send(kernel_id)
        # instance.accept_if_room(msg), written out: the host's hot path.
        if not (
            instance.accepting
            and isinstance(msg, instance.accept_type)
            and instance.input.put_if_room(msg)
        ):
            await instance.accept(msg, timeout)

    async def send_many(
        self, kernel_id: str, msgs: Sequence[Any], timeout: float | None = None
    ) -> None:
        """Send ``msgs`` in order, as ``send`` would one by one (all are type-checked
        first, so a bad one is refused before any is queued). Under REJECT, the
        QueueFullError's ``accepted`` says how many went in before the refusal."""
        instance = self._kernels.get(kernel_id)
        if instance is None or self._closing:
            self._refuse_send(kernel_id)
        await instance.accept_many(msgs, timeout)

    async def send_control(self, kernel_id: str, msg: Any, *, sender: str = "host") -> None:
        """Put control message ``msg`` (an end-of-stream marker: news, not data) into
        kernel ``kernel_id``'s input queue past its backpressure: never refused for room,
        never evicted by DROP_OLDEST, never waiting (the queue may go past its capacity by
        the control messages it holds). Allowed while the runtime drains. Raises
        KernelFailedError or KernelStateError, as :meth:`send`, once the kernel takes no
        more messages."""
        self._get(kernel_id).accept_control(msg, sender=sender)

    async def receive_batch(
        self, kernel_id: str, max_items: int, timeout: float | None = None
    ) -> list[Any]:
        """Wait for one result from ``kernel_id`` (as :meth:`receive`), then take
        whatever else is queued, up to ``max_items`` in all."""
        if type(max_items) is not int or max_items < 1:
            raise InvalidArgumentError(
                f"receive_batch: max_items must be a positive int, got {max_items!r}"
            )
        first = await self.receive(kernel_id, timeout)
        batch = [first]
        if max_items > 1:
            batch.extend(self._kernels[kernel_id].output.get_batch_nowait(max_items - 1))
        return batch

    def check_accepting(self, kernel_id: str) -> None:
        """Raise what :meth:`send` to ``kernel_id`` would raise if it takes no more messages
        (KernelFailedError, or KernelStateError once it stopped); return if it does.

        A producer that parks data outside the kernel's queue (a device ring) asks this
        before each write, so it never writes for a consumer that will not read.
        """
        self._get(kernel_id).check_accepting()

    def kernel_error(self, kernel_id: str) -> BaseException | None:
        """The exception that failed the kernel for good, or None."""
        return self._get(kernel_id).error

    async def receive(self, kernel_id: str, timeout: float | None = None) -> Any:
        """The next message kernel ``kernel_id`` sent with ``ctx.send``.

        Queued results are handed out even after the kernel failed or stopped; once
        none are left, raises KernelFailedError (failed) or KernelStateError (stopped)
        instead of waiting, and QueueTimeoutError after ``timeout`` seconds otherwise.
        """
        instance = self._kernels.get(kernel_id)
        if instance is None:
            raise KernelNotFoundError(self._unknown(kernel_id))
        if instance.route is not None:
            raise KernelStateError(
                f"kernel {kernel_id!r} sends along its route ({instance.route!r}), not to "
                "its output queue: receive from the route's end instead"
            )
        output = instance.output
        msg = output.take()  # the hot path: a result is waiting
        if msg is not NOTHING:
            return msg
        return await output.get(timeout)

    async def connect(
        self,
        source: str,
        destinations: str | Sequence[str],
        *,
        mode: RouteMode | str = RouteMode.ROUND_ROBIN,
    ) -> None:
        """Route what ``source`` sends straight into the input queue(s) of
        ``destinations``: several are served round robin or by broadcast. Calling it
        again for the same source adds destinations (the mode must match). Several
        sources may share a destination (fan-in)."""
        names = [destinations] if isinstance(destinations, str) else list(destinations)
        if not names:
            raise InvalidArgumentError(f"connect({source!r}, ...): no destination given")
        src = self._get(source)
        route_mode = RouteMode.parse(mode)
        targets = [self._get(name) for name in names]
        for target in targets:
            _check_types_compatible(src, target)
        if src.route is None:
            if len(src.output):
                raise KernelStateError(
                    f"kernel {source!r} has {len(src.output)} unread messages in its output "
                    "queue; receive them before connecting it"
                )
            src.route = Route(source, route_mode)
        elif src.route.mode is not route_mode:
            raise InvalidArgumentError(
                f"kernel {source!r} already routes {src.route.mode.value}; "
                f"cannot add {route_mode.value} destinations"
            )
        for target in targets:
            src.route.add(target)

    async def deliver(self, kernel_id: str, msg: Any, *, sender: str) -> None:
        """Put ``msg`` into kernel ``kernel_id``'s input queue as a send of kernel
        ``sender`` (what ``ctx.send_to`` does), under the receiver's backpressure.

        Unlike :meth:`send`, it is allowed while the runtime drains at shutdown, so
        kernels can hand on what they are finishing. Raises KernelNotFoundError for an
        unknown receiver, and what :meth:`send` raises for one that failed or stopped.
        """
        instance = self._kernels.get(kernel_id)
        if instance is None:
            raise KernelNotFoundError(self._unknown(kernel_id))
        await instance.accept(msg, sender=f"kernel {sender!r}")

    def _refuse_send(self, kernel_id: str) -> NoReturn:
        if self._closing:
            raise KernelStateError(f"cannot send to {kernel_id!r}: the runtime is shutting down")
        raise KernelNotFoundError(self._unknown(kernel_id))

    # -- telemetry --------------------------------------------------------------------

    def get_telemetry(self, kernel_id: str) -> KernelTelemetry:
        """A snapshot of one kernel's counters (valid after shutdown too)."""
        return self._get(kernel_id).telemetry()

    def input_waits(self, kernel_id: str) -> tuple[int, Sequence[float]]:
        """How many messages the kernel's input queue has handed out, ever, and the
        waits (seconds) of the most recent of them, newest last: the queue's own live
        record, none when telemetry is off. For readers on the runtime's event loop
        (the record changes as messages are taken); a histogram of waits reads the
        samples taken since it last looked (see ``pydotcompute.pipeline.WaitHistogram``)."""
        queue = self._get(kernel_id).input
        return queue.taken, queue.wait_samples

    def get_all_telemetry(self) -> dict[str, KernelTelemetry]:
        """Snapshots for every kernel, by id."""
        return {kid: k.telemetry() for kid, k in self._kernels.items()}

    # -- health and dead letters -------------------------------------------------------

    def health(self) -> RuntimeHealth:
        """Every kernel's state, restarts, stalls, queue depths and errors."""
        letters = self._dead_letters.select()
        kernels = {}
        now = time.monotonic()
        for kid, k in self._kernels.items():
            k.check_stall(now)  # current, not as of the watchdog's last tick
            failed = k.state is KernelState.FAILED
            kernels[kid] = KernelHealth(
                kernel_id=kid,
                state=k.state.value,
                healthy=not (failed or k.stalled or k.stuck),
                stalled=k.stalled,
                restarts=k.restarts.total,
                stalls=k.stalls,
                errors=k.errors,
                input_queue_depth=len(k.input),
                output_queue_depth=len(k.output),
                dead_letters=sum(1 for d in letters if d.kernel_id == kid),
                last_error=None if k.error is None else repr(k.error),
            )
        return RuntimeHealth(kernels, len(letters), self._dead_letters.discarded)

    def dead_letters(self, kernel_id: str | None = None) -> list[DeadLetter]:
        """The messages that failed, stalled or expired (of one kernel, or all),
        oldest first, with the reason and the exception."""
        return self._dead_letters.select(kernel_id)

    async def replay_dead_letters(
        self, kernel_id: str | None = None, *, to: str | None = None
    ) -> int:
        """Send the dead letters (of one kernel, or all) again: each to its own kernel,
        or all to ``to``. They leave the dead letter queue; if a send fails, that
        letter and the ones after it are put back and the error is raised. Returns
        how many were sent."""
        letters = self._dead_letters.take(kernel_id)
        for index, letter in enumerate(letters):
            try:
                await self.send(to or letter.kernel_id, letter.message)
            except BaseException:
                for unsent in letters[index:]:
                    self._dead_letters.add(
                        unsent.kernel_id, unsent.message, unsent.reason, unsent.error
                    )
                raise
        return len(letters)

    # -- shutdown ---------------------------------------------------------------------

    async def shutdown(self, timeout: float | None = None) -> ShutdownReport:
        """Stop every kernel and report what was left. Idempotent.

        New sends from the host are refused at once. Active kernels get up to
        ``timeout`` seconds (default ``drain_timeout``) to empty their input queues
        (kernels may still send to each other meanwhile); then every kernel is asked to
        terminate, and cancelled after the grace period if it does not. Whatever is
        still queued is counted, logged as a warning and returned.
        """
        if self.shutdown_report is not None:
            return self.shutdown_report
        started = time.perf_counter()
        self._closing = True
        drained = await self._drain(self.drain_timeout if timeout is None else timeout)
        live = [k for k in self._kernels.values() if not k.task.done()]
        for instance in self._kernels.values():
            instance.request_termination()
        await asyncio.gather(*(k.join(self.grace_period) for k in live))
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.wait({self._watchdog})
        if self._loop_watchdog is not None:
            self._loop_watchdog.stop()
        report = ShutdownReport(
            kernels={kid: _leftovers(k) for kid, k in self._kernels.items()},
            drained=drained,
            duration_s=time.perf_counter() - started,
        )
        if not report.clean:
            logger.warning("runtime shut down with messages left behind:\n%s", report.summary())
        self.shutdown_report = report
        return report

    async def _drain(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            for k in self._kernels.values():
                k.check_stall(now)
            # A stalled kernel will not drain: waiting for it would only delay the rest.
            busy = [
                k
                for k in self._kernels.values()
                if k.state is KernelState.ACTIVE and not k.idle and not k.stalled
            ]
            if not busy:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            for instance in busy:
                # Short steps, so that a kernel found stalled meanwhile stops the wait.
                await instance.wait_idle(min(max(deadline - time.monotonic(), 0.0), _DRAIN_STEP_S))
            # One more pass: draining one kernel may have fed another through a route.

    # -- lookup -----------------------------------------------------------------------

    def _check_loop(self) -> None:
        for instance in self._kernels.values():
            instance.check_loop()
            return  # all kernels share the first one's loop

    def _get(self, kernel_id: str) -> KernelInstance:
        instance = self._kernels.get(kernel_id)
        if instance is None:
            raise KernelNotFoundError(self._unknown(kernel_id))
        return instance

    def _unknown(self, kernel_id: str) -> str:
        known = ", ".join(self._kernels) or "none"
        return f"no kernel {kernel_id!r} is launched in this runtime (launched: {known})"


def _check_types_compatible(src: KernelInstance, dst: KernelInstance) -> None:
    out_type, in_type = src.spec.output_type, dst.spec.input_type
    if out_type is not None and in_type is not None and not issubclass(out_type, in_type):
        raise MessageTypeError(
            f"cannot connect {src.kernel_id!r} to {dst.kernel_id!r}: it sends "
            f"{out_type.__qualname__}, but {dst.kernel_id!r} takes {in_type.__qualname__}"
        )


def _leftovers(instance: KernelInstance) -> KernelLeftovers:
    return KernelLeftovers(
        kernel_id=instance.kernel_id,
        state=instance.state.value,
        unprocessed=tuple(instance.input.snapshot()),
        unread=tuple(instance.output.snapshot()),
        undeliverable=tuple(instance.abandoned),
        error=instance.error,
        stuck=instance.stuck,
        cancelled=instance.cancelled,
    )
