"""Bounded message queues with a backpressure strategy, after anyio's memory streams.

A queue holds at most ``capacity`` messages. When it is full, the strategy decides:
BLOCK makes the producer wait for room, REJECT refuses at once with
:class:`QueueFullError`, DROP_OLDEST evicts the oldest message and counts it. Every
awaiting method is built on its ``*_nowait`` twin, and cleans up in ``finally`` so that
a cancelled waiter never loses or duplicates a message.

Control messages (:meth:`MessageQueue.put_control`: an end-of-stream marker, news
without data) go past the bound: never refused, never evicted, never waiting, and they
take no room from data. They keep their place in the order, so a marker still arrives
after everything its sender queued before it. There are few of them (one per producer
and stream), so the queue exceeds its capacity by at most that many.
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from ..errors import InvalidArgumentError, QueueFullError, QueueTimeoutError
from ._enums import parse_enum

__all__ = [
    "NOTHING",
    "BackpressureStrategy",
    "MessageQueue",
    "Ordering",
    "QueueEmpty",
    "QueueStatistics",
]

_T = TypeVar("_T")
Ordering = Literal["fifo", "priority"]
ErrorFactory = Callable[[], BaseException]

# How many recent queue-wait samples feed the p50/p99 figures: enough for a stable p99,
# small enough that a percentile costs well under a millisecond.
WAIT_SAMPLES = 4096


class BackpressureStrategy(enum.Enum):
    """What a full queue does with one more message."""

    BLOCK = "block"  #: the producer waits for room: nothing is lost
    REJECT = "reject"  #: the producer gets QueueFullError at once
    DROP_OLDEST = "drop_oldest"  #: the oldest queued message is evicted and counted

    @classmethod
    def parse(cls, value: BackpressureStrategy | str) -> BackpressureStrategy:
        """Accept a member or its name/value in any case (``"drop_oldest"``, ``"BLOCK"``)."""
        return parse_enum(cls, value, "backpressure strategy")


@dataclass(frozen=True)
class QueueStatistics:
    """A snapshot of one queue."""

    name: str  #: "<kernel id>.input" or "<kernel id>.output"
    size: int  #: messages queued now
    capacity: int  #: most messages the queue holds
    backpressure: BackpressureStrategy  #: what happens when it is full
    accepted: int  #: messages put into the queue, ever
    taken: int  #: messages handed out by get, ever
    dropped: int  #: messages evicted by DROP_OLDEST
    rejected: int  #: messages refused because the queue was full (REJECT)
    expired: int  #: messages whose deadline passed while queued (not handed out)
    control: int  #: control messages put past the bound (counted in accepted too)
    waiting_getters: int  #: tasks waiting for a message now
    waiting_putters: int  #: tasks waiting for room now (BLOCK)


class QueueEmpty(Exception):
    """``get_nowait`` found nothing to hand out (internal to the runtime's queues)."""


class _Nothing:
    """The type of :data:`NOTHING`."""

    def __repr__(self) -> str:
        return "NOTHING"


#: What ``take()`` returns when there is no message to hand out.
NOTHING: Any = _Nothing()


class MessageQueue(Generic[_T]):
    """A bounded queue of messages. Not thread-safe: use it from one event loop.

    ``get`` may be paused (a deactivated kernel takes nothing) and either side may be
    given an error factory: once set, a put raises it at once, and a get raises it
    when it would otherwise have to wait (queued messages are still handed out first,
    unless ``pause_get`` is also in force).
    """

    # Slots: attribute reads on the per-message paths stay fast (an instance dict with
    # more than 30 keys loses CPython's fast attribute access).
    __slots__ = (
        "_controls",
        "_deadlines",
        "_empty_waiters",
        "_fifo",
        "_get_error",
        "_get_paused",
        "_getters",
        "_heap",
        "_items",
        "_limit",
        "_on_drop",
        "_on_expire",
        "_priority",
        "_put_error",
        "_put_wait_error",
        "_putters",
        "_record",
        "_sequence",
        "_timer",
        "_timer_at",
        "_timer_loop",
        "accepted",
        "backpressure",
        "capacity",
        "control",
        "dropped",
        "expired",
        "name",
        "ordering",
        "rejected",
        "taken",
        "wait_samples",
    )

    def __init__(
        self,
        capacity: int,
        backpressure: BackpressureStrategy = BackpressureStrategy.BLOCK,
        ordering: Ordering = "fifo",
        *,
        name: str = "queue",
        on_drop: Callable[[_T], None] | None = None,
        on_expire: Callable[[_T], None] | None = None,
        record_waits: bool = True,
    ) -> None:
        if type(capacity) is not int or capacity < 1:
            raise InvalidArgumentError(f"{name}: capacity must be a positive int, got {capacity!r}")
        if ordering not in ("fifo", "priority"):
            raise InvalidArgumentError(
                f"{name}: ordering must be 'fifo' or 'priority', got {ordering!r}"
            )
        self.name = name
        self.capacity = capacity
        self.backpressure = BackpressureStrategy.parse(backpressure)
        self.ordering: Ordering = ordering
        self._on_drop = on_drop
        # Given: messages whose ``deadline`` (epoch seconds) has passed are not handed
        # out but counted as expired and passed to this callback.
        self._on_expire = on_expire
        # FIFO entries are (enqueued_at, item); priority entries are
        # (-priority, sequence, enqueued_at, item) in a heap, FIFO within a priority.
        # enqueued_at is 0.0 when waits are not recorded: no clock read per message.
        self._fifo: deque[tuple[float, _T]] = deque()
        self._record = record_waits
        self._heap: list[tuple[int, int, float, _T]] = []
        self._sequence = itertools.count()
        self._priority = ordering == "priority"
        # The one container in use, so hot paths can call the C-level len() on it.
        self._items: deque[Any] | list[Any] = self._heap if self._priority else self._fifo
        self._getters: deque[asyncio.Future[None]] = deque()
        self._putters: deque[asyncio.Future[None]] = deque()
        self._empty_waiters: list[asyncio.Future[None]] = []
        # Waiters with a timeout, and their deadlines (time.monotonic()). One timer per
        # queue serves them all, armed for the earliest deadline and left to run out when
        # a waiter is served first: a kernel that waits with a timeout for each message
        # then arms a timer once per timeout, not once per message (see _on_timer).
        self._deadlines: dict[asyncio.Future[None], float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        # The loop the timer runs in: a queue used again in another event loop (a new
        # asyncio.run) must not count on a timer of a loop that is gone.
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._get_paused = False
        self._put_error: ErrorFactory | None = None
        self._put_wait_error: ErrorFactory | None = None
        self._get_error: ErrorFactory | None = None
        self.accepted = 0
        self.taken = 0
        self.dropped = 0
        self.rejected = 0
        self.expired = 0
        self.control = 0
        # Identities of the control messages queued now: eviction passes over them, and
        # they take no room (see put_control).
        self._controls: set[int] = set()
        # capacity + len(_controls), kept in step with the set: the room check on every
        # put is then one len() and one comparison, as it was before control messages.
        self._limit = capacity
        self.wait_samples: deque[float] = deque(maxlen=WAIT_SAMPLES if record_waits else 0)

    # -- inspection -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._items)

    def ready(self) -> bool:
        """True when a get would hand out a message right now."""
        return not self._get_paused and bool(self._items)

    def full(self) -> bool:
        """True when a data message would find no room (control messages take none)."""
        return len(self._items) >= self._limit

    @property
    def waiting_getters(self) -> int:
        return sum(1 for f in self._getters if not f.done())

    def statistics(self) -> QueueStatistics:
        return QueueStatistics(
            name=self.name,
            size=len(self),
            capacity=self.capacity,
            backpressure=self.backpressure,
            accepted=self.accepted,
            taken=self.taken,
            dropped=self.dropped,
            rejected=self.rejected,
            expired=self.expired,
            control=self.control,
            waiting_getters=self.waiting_getters,
            waiting_putters=sum(1 for f in self._putters if not f.done()),
        )

    def snapshot(self) -> list[_T]:
        """The queued messages, in the order they would be handed out."""
        if self._priority:
            return [entry[3] for entry in sorted(self._heap)]
        return [entry[1] for entry in self._fifo]

    # -- put side ---------------------------------------------------------------------

    def put_nowait(self, item: _T) -> None:
        """Queue ``item`` now or raise: QueueFullError when full under BLOCK or REJECT
        (REJECT counts it), the put error when one is set. DROP_OLDEST never raises
        for a full queue: it evicts the oldest message."""
        if self._put_error is not None:
            raise self._put_error()
        if len(self._items) >= self._limit:
            if self.backpressure is BackpressureStrategy.DROP_OLDEST:
                self._drop_oldest()
            else:
                if self.backpressure is BackpressureStrategy.REJECT:
                    self.rejected += 1
                raise QueueFullError(
                    f"{self.name} is full ({self.capacity} messages, "
                    f"{self.backpressure.value}); the message was not accepted"
                )
        now = time.perf_counter() if self._record else 0.0
        if self._priority:
            priority = getattr(item, "priority", 0)
            heapq.heappush(self._heap, (-priority, next(self._sequence), now, item))
        else:
            self._fifo.append((now, item))
        self.accepted += 1
        if self._getters:
            _wake_next(self._getters)

    def put_control(self, item: _T) -> None:
        """Queue control message ``item`` past the bound: never refused for room (even
        under REJECT), never evicted (DROP_OLDEST evicts the oldest data message
        instead), never waiting, taking no room from data. Counted in ``accepted`` and
        ``control``. Raises the put error when one is set: a stopped kernel takes
        nothing."""
        if self._put_error is not None:
            raise self._put_error()
        # Room for exactly one more, whatever is queued: put_nowait, the one way in, then
        # neither refuses nor evicts for it (and nothing else in it can fail).
        self._limit = len(self._items) + 1
        self.put_nowait(item)
        self._controls.add(id(item))
        self._limit = self.capacity + len(self._controls)
        self.control += 1

    def put_if_room(self, item: _T) -> bool:
        """Queue ``item`` if there is room and no error is set; else do nothing and
        return False (the caller takes the full ``put`` path). The hot path of sends:
        a FIFO queue appends here, without put_nowait's checks over again."""
        if self._put_error is not None or len(self._items) >= self._limit:
            return False
        if self._priority:
            self.put_nowait(item)
            return True
        self._fifo.append((time.perf_counter() if self._record else 0.0, item))
        self.accepted += 1
        if self._getters:
            _wake_next(self._getters)
        return True

    async def put(self, item: _T, timeout: float | None = None) -> None:
        """Queue ``item``; under BLOCK wait for room, raising QueueTimeoutError after
        ``timeout`` seconds. Other strategies never wait."""
        if (
            len(self._items) < self._limit  # not full(), inlined: the hot path
            or self.backpressure is not BackpressureStrategy.BLOCK
            or self._put_error is not None
        ):
            self.put_nowait(item)
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.full() and self._put_error is None:
            if self._put_wait_error is not None:
                raise self._put_wait_error()
            await self._wait(self._putters, deadline, timeout, "room")
        self.put_nowait(item)

    def try_put_many_nowait(self, items: Sequence[_T]) -> bool:
        """Queue all of ``items`` if there is room for all of them now (FIFO queues,
        no error set); else queue none and return False."""
        if (
            self._priority
            or self._put_error is not None
            or len(items) > self._limit - len(self._fifo)
        ):
            return False
        now = time.perf_counter() if self._record else 0.0
        self._fifo.extend([(now, item) for item in items])
        self.accepted += len(items)
        if self._getters:
            _wake_next(self._getters)
        return True

    async def put_many(self, items: Sequence[_T], timeout: float | None = None) -> None:
        """Queue ``items`` in order, as ``put`` would one by one; on QueueFullError
        (REJECT), ``accepted`` says how many went in first."""
        if self.try_put_many_nowait(items):
            return
        for index, item in enumerate(items):
            try:
                await self.put(item, timeout)
            except QueueFullError as exc:
                exc.accepted = index
                raise

    def _forget_control(self, item: Any) -> None:
        """``item`` left the queue: if it was a control message, it no longer counts."""
        self._controls.discard(id(item))
        self._limit = self.capacity + len(self._controls)

    def _drop_oldest(self) -> None:
        if self._priority or (self._controls and id(self._fifo[0][1]) in self._controls):
            item = self._pop_oldest_data()
        else:
            item = self._fifo.popleft()[1]
        self.dropped += 1
        if self._on_drop is not None:
            self._on_drop(item)

    def _pop_oldest_data(self) -> Any:
        """Remove and return the oldest data message, passing over control messages: the
        rare eviction, kept out of ``_drop_oldest`` so that the common one stays small."""
        controls = self._controls
        if self._priority:
            heap = self._heap
            oldest = min(
                (i for i in range(len(heap)) if id(heap[i][3]) not in controls),
                key=lambda i: heap[i][1],
            )
            item = heap.pop(oldest)[3]
            heapq.heapify(heap)
            return item
        index = next(i for i, entry in enumerate(self._fifo) if id(entry[1]) not in controls)
        item = self._fifo[index][1]
        del self._fifo[index]
        return item

    # -- get side ---------------------------------------------------------------------

    def take(self) -> Any:
        """The next message now, or :data:`NOTHING` when there is none to hand out
        (empty, paused, or every queued message had expired). Raises the get error
        instead of returning NOTHING once one is set."""
        items = self._items
        while items and not self._get_paused:
            if self._priority:
                _, _, enqueued_at, item = heapq.heappop(self._heap)
            else:
                enqueued_at, item = self._fifo.popleft()
            if self._on_expire is not None:
                deadline = getattr(item, "deadline", None)
                if deadline is not None and deadline < time.time():
                    self.expired += 1
                    self._forget_control(item)
                    self._on_expire(item)
                    self._after_removal()
                    continue
            self.taken += 1
            if self._record:
                self.wait_samples.append(time.perf_counter() - enqueued_at)
            if self._controls:
                self._forget_control(item)
            # _after_removal, inlined: this runs for every message.
            if self._putters:
                _wake_next(self._putters)
            if self._empty_waiters and not items:
                _wake_all(self._empty_waiters)
            return item
        if self._get_error is not None:
            raise self._get_error()
        return NOTHING

    def _after_removal(self) -> None:
        if self._putters:
            _wake_next(self._putters)
        if self._empty_waiters and not self._items:
            _wake_all(self._empty_waiters)

    def get_nowait(self) -> _T:
        """Hand out the next message now; raises the get error, or ``QueueEmpty``."""
        item = self.take()
        if item is NOTHING:
            raise QueueEmpty(f"{self.name} has no message to hand out")
        return item  # type: ignore[no-any-return]

    def get_batch_nowait(self, max_items: int) -> list[_T]:
        """Up to ``max_items`` queued messages, possibly none (no error when empty)."""
        if not self._priority and not self._get_paused:
            return self._take_fifo_batch(max_items)
        batch: list[_T] = []
        while len(batch) < max_items and self.ready():
            item = self.take()
            if item is NOTHING:
                break
            batch.append(item)
        return batch

    def _take_fifo_batch(self, max_items: int) -> list[_T]:
        # ``take`` in one pass: one clock read per batch for the wait samples, and
        # putters woken once per freed slot after the loop. This is the pipeline's
        # hottest path (every stage drains its input this way).
        fifo = self._fifo
        popleft = fifo.popleft
        on_expire = self._on_expire
        record = self._record
        now = time.perf_counter() if record else 0.0
        wall = time.time() if on_expire is not None else 0.0
        batch: list[_T] = []
        samples: list[float] = []
        removed = 0
        while fifo and len(batch) < max_items:
            enqueued_at, item = popleft()
            removed += 1
            if on_expire is not None:
                deadline = getattr(item, "deadline", None)
                if deadline is not None and deadline < wall:
                    self.expired += 1
                    self._forget_control(item)
                    on_expire(item)
                    continue
            batch.append(item)
            if record:
                samples.append(now - enqueued_at)
        if removed:
            if self._controls:
                self._controls.difference_update(map(id, batch))
                self._limit = self.capacity + len(self._controls)
            self.taken += len(batch)
            self.wait_samples.extend(samples)
            putters = self._putters
            for _ in range(removed):
                if not putters:
                    break
                _wake_next(putters)
            if self._empty_waiters and not fifo:
                _wake_all(self._empty_waiters)
        return batch

    async def get(self, timeout: float | None = None) -> _T:
        """The next message, waiting for one; QueueTimeoutError after ``timeout``."""
        # Callers mostly come here having just found take() empty: skip the call then.
        if (self._items and not self._get_paused) or self._get_error is not None:
            item = self.take()  # a message, or the get error raised
            if item is not NOTHING:
                return item  # type: ignore[no-any-return]
        deadline = None if timeout is None else time.monotonic() + timeout
        getters = self._getters
        while True:
            # _wait(getters, ...), written out: a kernel or a host that keeps up with
            # its input waits once per message, and a coroutine per wait costs as much
            # as the rest of the wait. Keep the two in step.
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()
            getters.append(waiter)
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    getters.remove(waiter)
                    raise QueueTimeoutError(f"{self.name}: no message within {timeout} s")
                self._deadlines[waiter] = deadline
                if deadline < self._timer_at or self._timer_loop is not loop:
                    self._arm_timer(loop, deadline, remaining)
            try:
                await waiter
            except BaseException as exc:
                if self._stop_waiting(waiter, getters, deadline, exc):
                    raise QueueTimeoutError(f"{self.name}: no message within {timeout} s") from None
                raise
            # Woken: the waker took the waiter off the list.
            if deadline is not None:
                del self._deadlines[waiter]
            item = self.take()
            if item is not NOTHING:
                return item  # type: ignore[no-any-return]

    async def wait_empty(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued; True if so, False if ``timeout`` ran out."""
        if not len(self):
            return True
        future = asyncio.get_running_loop().create_future()
        self._empty_waiters.append(future)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return False
        finally:
            if future in self._empty_waiters:
                self._empty_waiters.remove(future)
        return True

    # -- control ----------------------------------------------------------------------

    def pause_get(self) -> None:
        """Hand out nothing until :meth:`resume_get`; puts keep queueing."""
        self._get_paused = True

    def resume_get(self) -> None:
        self._get_paused = False
        _wake_all(self._getters)

    def fail_puts(self, error: ErrorFactory) -> None:
        """From now on every put raises ``error()``; waiting putters are woken to raise it."""
        self._put_error = error
        _wake_all(self._putters)

    def refuse_waiting_puts(self, error: ErrorFactory) -> None:
        """Puts that would wait for room raise ``error()`` instead (waiting ones too);
        puts that find room still succeed."""
        self._put_wait_error = error
        _wake_all(self._putters)

    def fail_gets(self, error: ErrorFactory) -> None:
        """From now on a get that would wait raises ``error()``; waiters are woken."""
        self._get_error = error
        _wake_all(self._getters)

    # -- waiting ----------------------------------------------------------------------

    async def _wait(
        self,
        waiters: deque[asyncio.Future[None]],
        deadline: float | None,
        timeout: float | None,
        what: str,
    ) -> None:
        """Wait to be woken (see _wake_next) or for the deadline; get() has its own copy."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        waiters.append(waiter)
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                waiters.remove(waiter)
                raise QueueTimeoutError(f"{self.name}: no {what} within {timeout} s")
            self._deadlines[waiter] = deadline
            if deadline < self._timer_at or self._timer_loop is not loop:
                self._arm_timer(loop, deadline, remaining)
        try:
            await waiter
        except BaseException as exc:
            if self._stop_waiting(waiter, waiters, deadline, exc):
                raise QueueTimeoutError(f"{self.name}: no {what} within {timeout} s") from None
            raise
        # Woken: the waker took the waiter off the list.
        if deadline is not None:
            del self._deadlines[waiter]

    def _stop_waiting(
        self,
        waiter: asyncio.Future[None],
        waiters: deque[asyncio.Future[None]],
        deadline: float | None,
        exc: BaseException,
    ) -> bool:
        """A wait ended by an exception (its deadline, a cancellation, the coroutine
        closed): leave nothing of it behind, and pass on a wake-up it got but will not
        use. True when it timed out."""
        if deadline is not None:
            del self._deadlines[waiter]
        if isinstance(exc, asyncio.CancelledError) and waiter.done() and not waiter.cancelled():
            _wake_next(waiters)  # woken, then cancelled: so that nobody is stranded
        if not waiter.done():
            waiter.cancel()
        if waiter in waiters:
            waiters.remove(waiter)
        return isinstance(exc, _Expired)

    def _arm_timer(
        self, loop: asyncio.AbstractEventLoop, deadline: float, remaining: float
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_later(remaining, self._on_timer)
        self._timer_at = deadline
        self._timer_loop = loop

    def _on_timer(self) -> None:
        """The earliest deadline has come: expire every waiter whose deadline passed, and
        arm the timer again for the earliest deadline left (none: it stays off)."""
        self._timer, self._timer_at = None, math.inf
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        earliest = math.inf
        for waiter, deadline in self._deadlines.items():
            if waiter.get_loop() is not loop:
                continue  # left behind by a loop that ended: its task will clear it
            if deadline <= now:
                if not waiter.done():
                    waiter.set_exception(_Expired())
            elif deadline < earliest:
                earliest = deadline
        if earliest < math.inf:
            self._arm_timer(loop, earliest, earliest - now)


class _Expired(Exception):
    """Internal: a waiter's timer ran out."""


def _wake_next(waiters: deque[asyncio.Future[None]]) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)
            return


def _wake_all(waiters: Any) -> None:
    for waiter in list(waiters):
        if not waiter.done():
            waiter.set_result(None)
    waiters.clear()
