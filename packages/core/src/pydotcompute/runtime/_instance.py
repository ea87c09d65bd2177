"""A launched kernel: its queues, its task, its lifecycle state and its counters."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
import weakref
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import (
    KernelFailedError,
    KernelStateError,
    MessageTypeError,
    QueueClosedError,
    QueueFullError,
)
from ._context import KernelContext
from ._dead_letters import DeadLetterQueue, DeadLetterReason
from ._detachable import Detachable, coroutine_stack
from ._kernel import KernelSpec, KernelState
from ._message import RingKernelMessage
from ._queue import MessageQueue
from ._supervision import RestartTracker
from ._telemetry import KernelTelemetry, wait_percentiles_us

if TYPE_CHECKING:
    from ._ring_runtime import RingKernelRuntime
    from ._routes import Route

__all__ = ["KernelInstance"]

logger = logging.getLogger("pydotcompute")

# How often a kernel that ignores termination is cancelled again before it is given up.
_CANCEL_ATTEMPTS = 5
_CANCEL_INTERVAL_S = 0.05

_ACCEPTING = frozenset({KernelState.LAUNCHED, KernelState.ACTIVE, KernelState.DEACTIVATED})
# A send refused because its receiver stopped or failed (not because of the data).
_RECEIVER_GONE = (QueueClosedError, KernelStateError, KernelFailedError)


class _NoType:
    """Of which nothing is an instance: the send fast path for an output_type that is
    no message class (every send of that kernel takes the checked path)."""


class KernelInstance:
    """One launched kernel. The runtime drives it; users see it through the runtime."""

    # Slots: the per-message paths read this object's attributes; with more than 30 of
    # them an instance dict would lose CPython's fast attribute access.
    __slots__ = (
        "_active_event",
        "_active_seconds",
        "_active_since",
        "_call",
        "_emit_type",
        "_last_progress",
        "_last_taken",
        "_output_type",
        "_stall_restart",
        "_state",
        "_stop_requested",
        "abandoned",
        "accept_type",
        "accepting",
        "burst",
        "cancelled",
        "counts",
        "ctx",
        "dead_lettered",
        "dead_letters",
        "error",
        "errors",
        "holding",
        "input",
        "kernel_id",
        "output",
        "restarts",
        "route",
        "sent",
        "spec",
        "stalled",
        "stalls",
        "stuck",
        "task",
        "terminate_requested",
    )

    def __init__(
        self,
        spec: KernelSpec,
        runtime: RingKernelRuntime,
        dead_letters: DeadLetterQueue,
        *,
        record_waits: bool,
    ) -> None:
        self.spec = spec
        self.kernel_id = spec.kernel_id
        self.dead_letters = dead_letters
        self.input: MessageQueue[Any] = MessageQueue(
            spec.input_queue_size,
            spec.backpressure,
            spec.ordering,
            name=f"kernel {spec.kernel_id!r} input queue",
            on_expire=self._expired,
            record_waits=record_waits,
        )
        self.output: MessageQueue[Any] = MessageQueue(
            spec.output_queue_size,
            spec.backpressure,
            name=f"kernel {spec.kernel_id!r} output queue",
            record_waits=False,
        )
        self.input.pause_get()  # nothing is handed out before activate()
        self._state = KernelState.LAUNCHED  # the setter mirrors it into ctx, made below
        self.accepting = True  # fast check for the send path
        self.terminate_requested = False
        self.error: BaseException | None = None
        self.route: Route | None = None
        self.sent = 0
        # The kernel's own counters (ctx.counts), reported in its telemetry; they last
        # across restarts, like the rest of the instance.
        self.counts: dict[str, int] = {}
        self.errors = 0
        self.burst = 0  # messages taken in a row without yielding (see _context.BURST)
        # The message(s) the kernel took and has not come back for more since: what a
        # failure dead-letters.
        self.holding: tuple[Any, ...] | list[Any] = ()
        self.dead_lettered = 0  # taken, then dead-lettered by a failure or a stall
        self.restarts = RestartTracker(spec.restart)
        self.stalls = 0
        self.cancelled = False  # join() had to cancel the task (see KernelLeftovers)
        self.stalled = False
        self._last_taken = 0
        self._last_progress = time.monotonic()
        self._stall_restart = False
        self.abandoned: list[Any] = []  # sends cut off by termination
        self.stuck = False  # ignored termination and cancellation
        self._call: Detachable | None = None  # the running call of the kernel's function
        self.accept_type: type = spec.input_type or RingKernelMessage
        self._output_type = spec.output_type
        # What a send may pass with one isinstance check (see emit_if_room); an
        # output_type that is no message class needs both checks, so none passes.
        output_type = spec.output_type
        if output_type is None:
            self._emit_type: type = RingKernelMessage
        elif issubclass(output_type, RingKernelMessage):
            self._emit_type = output_type
        else:
            self._emit_type = _NoType
        self._active_since: float | None = None
        self._active_seconds = 0.0
        self._active_event = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self.ctx = KernelContext(self, runtime)
        self.task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            self._run(), name=f"ring-kernel:{self.kernel_id}"
        )

    # -- lifecycle --------------------------------------------------------------------

    @property
    def state(self) -> KernelState:
        return self._state

    @state.setter
    def state(self, state: KernelState) -> None:
        self._state = state
        self.ctx.mirror()

    @property
    def is_active(self) -> bool:
        return self._state is KernelState.ACTIVE

    def activate(self) -> None:
        self._transition("activate", KernelState.LAUNCHED, KernelState.ACTIVE)
        self._start_active()

    def reactivate(self) -> None:
        self._transition("reactivate", KernelState.DEACTIVATED, KernelState.ACTIVE)
        self._start_active()

    def deactivate(self) -> None:
        self._transition("deactivate", KernelState.ACTIVE, KernelState.DEACTIVATED)
        self._stop_active()
        self.input.pause_get()

    def _transition(self, operation: str, allowed_from: KernelState, to: KernelState) -> None:
        if self.state is not allowed_from:
            raise KernelStateError(
                f"cannot {operation} kernel {self.kernel_id!r}: it is {self.state.value}, "
                f"and {operation} needs it {allowed_from.value}"
            )
        self.state = to

    def _start_active(self) -> None:
        self._active_since = time.perf_counter()
        self._active_event.set()
        self.input.resume_get()

    def _stop_active(self) -> None:
        if self._active_since is not None:
            self._active_seconds += time.perf_counter() - self._active_since
            self._active_since = None
        self._active_event.clear()

    async def wait_active(self, timeout: float | None) -> None:
        if self.state is KernelState.ACTIVE or self.terminate_requested:
            return
        await asyncio.wait_for(self._active_event.wait(), timeout)

    def request_termination(self) -> None:
        """Tell the kernel to stop: its loop sees ``should_terminate``; its receive
        raises QueueClosedError; a send blocked on a full queue is cut off."""
        if self.terminate_requested:
            return
        self.terminate_requested = True
        self.ctx.mirror()
        self._stop_requested.set()
        self.accepting = False
        if self.state is not KernelState.FAILED:
            self.state = KernelState.TERMINATING
        self._stop_active()
        self._active_event.set()  # wake wait_active() so the loop reaches its check
        closed = self._closed_error
        self.input.fail_puts(closed)
        self.input.pause_get()
        self.input.fail_gets(closed)
        self.output.refuse_waiting_puts(closed)

    def close_input(self) -> None:
        """Accept nothing more from senders (the kernel still drains what is queued)."""
        self.accepting = False
        self.input.fail_puts(self._closed_error)

    def _closed_error(self) -> QueueClosedError:
        return QueueClosedError(f"kernel {self.kernel_id!r} is terminating")

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until the input queue is empty and the kernel has come back for more
        (or its task ended); True if that happened within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self.idle:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if len(self.input):
                await self.input.wait_empty(remaining)
            else:
                await asyncio.sleep(min(0.001, remaining))
        return True

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing in hand (or the task has ended)."""
        return self.task.done() or not (len(self.input) or self.holding)

    async def join(self, grace: float) -> None:
        """Wait for the task to end; cancel it after ``grace`` seconds, and give up
        (logging an error) on a kernel that survives repeated cancellation."""
        if not self.task.done():
            await asyncio.wait({self.task}, timeout=grace)
        attempts = 0
        while not self.task.done() and attempts < _CANCEL_ATTEMPTS:
            self.cancelled = True
            self.task.cancel()
            await asyncio.wait({self.task}, timeout=_CANCEL_INTERVAL_S)
            attempts += 1
        if not self.task.done():
            self.stuck = True
            await self._abandon()
        if self.state is KernelState.TERMINATING:
            self.state = KernelState.TERMINATED
        if self.state is not KernelState.FAILED:
            self.output.fail_gets(self._no_more_output_error)

    async def _abandon(self) -> None:
        """Let go of a kernel that survived termination and cancellation: its task ends
        without it, so ``asyncio.run`` does not wait for it at exit, and its coroutine is
        closed now, while the loop runs. Logged at ERROR with where it was stuck."""
        call = self._call
        coro = None if call is None else call.release()
        if coro is None:  # not ours to let go (its function returned no coroutine)
            logger.error(
                "kernel %r ignored termination and %d cancellations; it is abandoned, "
                "and its task will keep the program from exiting (asyncio.run waits for "
                "every task). Does its loop check ctx.should_terminate?",
                self.kernel_id,
                _CANCEL_ATTEMPTS,
            )
            return
        stack = coroutine_stack(coro)
        self.task.cancel()  # the task's next step finds the call let go, and ends
        await asyncio.wait({self.task}, timeout=_CANCEL_INTERVAL_S)
        gone = weakref.ref(coro)
        del coro  # closed here: GeneratorExit, which it may swallow once more
        if gone() is not None:
            gc.collect()  # a reference cycle holds it: close it while the loop runs
        if gone() is not None or not self.task.done():
            fate = "something still holds its coroutine, which may keep the program from exiting"
        else:
            fate = "its coroutine was let go of and closed, so it cannot block exit"
        logger.error(
            "kernel %r ignored termination and %d cancellations (does its loop check "
            "ctx.should_terminate, and let CancelledError through?); it is abandoned: %s. "
            "It was waiting at:\n%s",
            self.kernel_id,
            _CANCEL_ATTEMPTS,
            fate,
            stack,
        )

    def _no_more_output_error(self) -> KernelStateError:
        return KernelStateError(
            f"kernel {self.kernel_id!r} is {self.state.value} and its output queue is empty"
        )

    async def _run(self) -> None:
        while True:
            try:
                call = self.spec.func(self.ctx)
                if isinstance(call, Coroutine):
                    # Stepped by a Detachable, so a kernel that ignores cancellation can
                    # be let go of (see _abandon).
                    self._call = call = Detachable(call)
                await call
            except asyncio.CancelledError:
                if self.terminate_requested or not self._stall_restart:
                    if not self.terminate_requested:
                        self.errors += 1
                        self._fail(self._cancelled_outside_error(), log=False)
                        logger.error("%s", self.error)
                    raise
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()  # our own cancellation, handled: not the caller's
                self._stall_restart = False
                continue  # the stall was dead-lettered and counted when it was detected
            except QueueClosedError:
                if not self.terminate_requested:
                    if await self._recover(QueueClosedError("unexpected close")):
                        continue
                    return
                logger.debug("kernel %r left its loop through QueueClosedError", self.kernel_id)
                self._stopped_holding(None)
            except Exception as exc:
                if await self._recover(exc):
                    continue
                return
            break
        if not self.terminate_requested:
            logger.warning(
                "kernel %r returned before it was asked to terminate; it takes no more "
                "messages (%d left in its input queue)",
                self.kernel_id,
                len(self.input),
            )
            self.request_termination()
            self.state = KernelState.TERMINATED
            self.output.fail_gets(self._no_more_output_error)

    async def _recover(self, exc: BaseException) -> bool:
        """The function raised: dead-letter what it held, then restart it after its
        backoff (True) or fail it for good (False)."""
        if self.terminate_requested and isinstance(exc, _RECEIVER_GONE):
            # Told to stop, and its receiver stopped too: no crash, one line.
            self._stopped_holding(exc)
            return False
        self.errors += 1
        self._dead_letter_holding(DeadLetterReason.FAILED, exc)
        if self.terminate_requested:
            self._fail(exc)
            return False
        delay = self.restarts.next_delay(time.monotonic())
        if delay is None:
            self._fail(exc)
            return False
        resume_as = self.state
        self.state = KernelState.RESTARTING
        self.input.pause_get()
        if resume_as is KernelState.ACTIVE:
            self._stop_active()
        logger.warning(
            "kernel %r raised %r; restart %d in %.3g s (policy: %d within %.3g s)",
            self.kernel_id,
            exc,
            self.restarts.total,
            delay,
            self.spec.restart.max_restarts,
            self.spec.restart.window,
            exc_info=exc,
        )
        with contextlib.suppress(TimeoutError):  # the backoff ran out: restart
            await asyncio.wait_for(self._stop_requested.wait(), delay)
        if self._stop_requested.is_set():  # terminated during the backoff
            return False
        self.state = resume_as
        if resume_as is KernelState.ACTIVE:
            self._start_active()
        return True

    def _stopped_holding(self, exc: BaseException | None) -> None:
        """Stopped as asked, but mid-way through what it held (a send was cut off): what
        it held goes to dead letters, said in one line, so that none of it is lost."""
        if not self.holding:
            return
        held = len(self.holding)
        self._dead_letter_holding(DeadLetterReason.STOPPED, exc)
        logger.warning(
            "kernel %r was stopped holding %d messages (a send was cut off%s); they went "
            "to dead letters",
            self.kernel_id,
            held,
            "" if exc is None else f": {exc}",
        )

    def _dead_letter_holding(self, reason: DeadLetterReason, exc: BaseException | None) -> None:
        for msg in self.holding:
            self.dead_letters.add(self.kernel_id, msg, reason, exc)
        self.dead_lettered += len(self.holding)
        self.holding = ()

    def _expired(self, msg: Any) -> None:
        self.dead_letters.add(self.kernel_id, msg, DeadLetterReason.EXPIRED)

    def check_stall(self, now: float) -> None:
        """Watchdog tick: an ACTIVE kernel that holds messages (queued or in hand) and
        has taken none for ``stall_timeout`` seconds is stalled: logged, counted, and
        restarted if its policy says so."""
        timeout = self.spec.stall_timeout
        taken = self.input.taken
        busy = bool(len(self.input) or self.holding)
        if (
            timeout is None
            or self.state is not KernelState.ACTIVE
            or not busy
            or taken != self._last_taken
        ):
            self._last_taken, self._last_progress, self.stalled = taken, now, False
            return
        if self.stalled or now - self._last_progress < timeout:
            return
        self.stalled = True
        self.stalls += 1
        logger.warning(
            "kernel %r stalled: %d queued, %d in hand, nothing taken for %.3g s",
            self.kernel_id,
            len(self.input),
            len(self.holding),
            now - self._last_progress,
        )
        if self.spec.restart.restart_on_stall and not self.task.done():
            if self.restarts.next_delay(now) is None:
                logger.error("kernel %r: stalled past its restart limit", self.kernel_id)
                return
            self._dead_letter_holding(DeadLetterReason.STALLED, None)
            self._stall_restart = True
            self.task.cancel()

    def _cancelled_outside_error(self) -> KernelStateError:
        return KernelStateError(
            f"kernel {self.kernel_id!r} was cancelled by something other than its runtime, "
            "most often its event loop ending (asyncio.run returning) before "
            "runtime.shutdown() was awaited; it takes no more messages"
        )

    def check_loop(self) -> None:
        """Raise KernelStateError if the event loop this kernel ran in is closed."""
        if self.task.get_loop().is_closed():
            raise self._loop_closed_error()

    def _loop_closed_error(self) -> KernelStateError:
        return KernelStateError(
            f"kernel {self.kernel_id!r} cannot be used: the event loop it ran in is closed "
            "(it ended, e.g. asyncio.run returned, before runtime.shutdown() was awaited). "
            "A runtime lives in one event loop: create a new RingKernelRuntime in this one"
        )

    def _fail(self, exc: BaseException, *, log: bool = True) -> None:
        self.state = KernelState.FAILED
        self.accepting = False
        self.error = exc
        self._stop_active()
        self._active_event.set()
        if log:
            logger.error("kernel %r failed", self.kernel_id, exc_info=exc)
        self.input.fail_puts(self._failed_error)
        self.input.pause_get()
        self.output.fail_gets(self._failed_error)
        self.output.refuse_waiting_puts(self._failed_error)

    def _failed_error(self) -> KernelFailedError | KernelStateError:
        if self.task.get_loop().is_closed():
            return self._loop_closed_error()
        error = KernelFailedError(f"kernel {self.kernel_id!r} failed: {self.error!r}")
        error.__cause__ = self.error
        return error

    # -- traffic ----------------------------------------------------------------------

    def accept_if_room(self, msg: Any) -> bool:
        """Queue ``msg`` now if it is acceptable and there is room; else False, and the
        caller takes the full ``accept`` path (which waits, or raises the right error)."""
        return self.accepting and isinstance(msg, self.accept_type) and self.input.put_if_room(msg)

    async def accept(self, msg: Any, timeout: float | None = None, sender: str = "host") -> None:
        """Queue ``msg`` in this kernel's input, under its backpressure."""
        if not self.accepting:
            self._refuse()
        if not isinstance(msg, self.accept_type):
            self._wrong_type(msg, sender)
        await self.input.put(msg, timeout)

    async def accept_many(
        self, msgs: Sequence[Any], timeout: float | None = None, sender: str = "host"
    ) -> None:
        """Queue ``msgs`` in order, as ``accept`` one by one would; type-checked
        before any is queued."""
        if not self.accepting:
            self._refuse()
        accept_type = self.accept_type
        for msg in msgs:
            if not isinstance(msg, accept_type):
                self._wrong_type(msg, sender)
        await self.input.put_many(msgs, timeout)

    def try_accept_many_nowait(self, msgs: Sequence[Any]) -> bool:
        """Queue all of ``msgs`` now if they are all acceptable and fit; else none."""
        accept_type = self.accept_type
        return (
            self.accepting
            and all(isinstance(msg, accept_type) for msg in msgs)
            and self.input.try_put_many_nowait(msgs)
        )

    def accept_control(self, msg: Any, sender: str = "host") -> None:
        """Queue control message ``msg`` in this kernel's input past its backpressure
        (see ``MessageQueue.put_control``): refused only when the kernel takes no more
        messages, or for a wrong type."""
        if not self.accepting:
            self._refuse()
        if not isinstance(msg, self.accept_type):
            self._wrong_type(msg, sender)
        self.input.put_control(msg)

    def check_accepting(self) -> None:
        """Raise what a send to this kernel would raise, if it takes no more messages."""
        if not self.accepting:
            self._refuse()

    def _refuse(self) -> NoReturn:
        self.check_loop()
        if self.state is KernelState.FAILED:
            raise self._failed_error()
        raise KernelStateError(
            f"kernel {self.kernel_id!r} is {self.state.value} and accepts no messages"
        )

    def _wrong_type(self, msg: Any, sender: str) -> NoReturn:
        got = type(msg).__qualname__
        if not isinstance(msg, RingKernelMessage):
            raise MessageTypeError(
                f"{sender} sent a {got} to kernel {self.kernel_id!r}, which is not a "
                "message: decorate its class with @message"
            )
        raise MessageTypeError(
            f"{sender} sent a {got} to kernel {self.kernel_id!r}, which takes "
            f"{self.accept_type.__qualname__} (input_type)"
        )

    async def emit_many(self, msgs: Sequence[Any]) -> None:
        """The kernel sends ``msgs`` on, in order, exactly as ``emit`` one by one would
        (a round-robin route deals them out one at a time); in one step when the one
        receiving queue has room for all."""
        for msg in msgs:
            if self._output_type is not None or not isinstance(msg, RingKernelMessage):
                self._check_output(msg)
        route = self.route
        if route is None:
            fast = self.output.try_put_many_nowait(msgs)
        elif len(route.destinations) == 1:
            fast = route.destinations[0].try_accept_many_nowait(msgs)
        else:
            fast = False
        if fast:
            self.sent += len(msgs)
            return
        for index, msg in enumerate(msgs):
            try:
                await self.emit(msg)
            except QueueFullError as exc:
                # A REJECT queue refused msgs[index]: the sender learns how far it got.
                exc.accepted = index
                raise

    def _check_output(self, msg: Any) -> None:
        output_type = self._output_type
        if output_type is not None and not isinstance(msg, output_type):
            raise MessageTypeError(
                f"kernel {self.kernel_id!r} sent a {type(msg).__qualname__}, but its "
                f"output_type is {output_type.__qualname__}"
            )
        if not isinstance(msg, RingKernelMessage):
            raise MessageTypeError(
                f"kernel {self.kernel_id!r} sent a {type(msg).__qualname__}, which is not a "
                "message: decorate its class with @message"
            )

    def emit_if_room(self, msg: Any) -> bool:
        """Send ``msg`` on now if it is of a type the kernel may send and its receiver
        has room; else False, and the caller takes the full ``emit`` path (which checks,
        waits, or raises the right error)."""
        if not isinstance(msg, self._emit_type):
            return False
        route = self.route
        if route is None:
            if not self.output.put_if_room(msg):
                return False
        elif route.single is None or not route.single.accept_if_room(msg):
            return False
        self.sent += 1
        return True

    async def emit(self, msg: Any) -> None:
        """The kernel sends ``msg`` on: along its route, or into its output queue."""
        if self._output_type is not None or not isinstance(msg, RingKernelMessage):
            self._check_output(msg)
        route = self.route
        if route is None:
            if self.output.put_if_room(msg):
                self.sent += 1
                return
        elif route.single is not None and route.single.accept_if_room(msg):
            self.sent += 1
            return
        try:
            if self.route is None:
                await self.output.put(msg)
            else:
                await self.route.deliver(msg)
        except (QueueClosedError, KernelStateError, KernelFailedError):
            # The receiver is gone or stopping: keep the message for the shutdown
            # report, so that a loop which swallows the error still loses nothing silently.
            self.abandoned.append(msg)
            raise
        self.sent += 1

    def emit_control(self, msg: Any) -> None:
        """The kernel sends control message ``msg`` past backpressure: into its output
        queue, or to every destination of its route (news for each of them)."""
        self._check_output(msg)
        route = self.route
        if route is None:
            self.output.put_control(msg)
        else:
            for destination in route.destinations:
                destination.accept_control(msg, sender=self.kernel_id)
        self.sent += 1

    # -- telemetry --------------------------------------------------------------------

    @property
    def active_seconds(self) -> float:
        extra = 0.0 if self._active_since is None else time.perf_counter() - self._active_since
        return self._active_seconds + extra

    def telemetry(self) -> KernelTelemetry:
        inp, out = self.input, self.output
        active = self.active_seconds
        p50, p99 = wait_percentiles_us(inp.wait_samples)
        processed = inp.taken - self.dead_lettered
        return KernelTelemetry(
            kernel_id=self.kernel_id,
            state=self.state.value,
            messages_received=inp.accepted + inp.rejected,
            messages_processed=processed,
            messages_sent=self.sent,
            messages_dropped=inp.dropped,
            messages_rejected=inp.rejected,
            messages_expired=inp.expired,
            messages_dead_lettered=self.dead_lettered,
            output_dropped=out.dropped,
            output_rejected=out.rejected,
            errors=self.errors,
            restarts=self.restarts.total,
            stalls=self.stalls,
            input_queue_depth=len(inp),
            output_queue_depth=len(out),
            active_seconds=active,
            throughput=processed / active if active > 0 else 0.0,
            queue_wait_p50_us=p50,
            queue_wait_p99_us=p99,
            counts=dict(self.counts),
        )
