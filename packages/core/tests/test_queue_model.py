"""Model-based test of the queue (issue 5): random interleavings of put, get, batch get,
timeouts, cancellation and pause/resume under each backpressure strategy and ordering,
checked against a plain Python model."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from pydotcompute import BackpressureStrategy, QueueFullError, QueueTimeoutError, message
from pydotcompute.runtime import MessageQueue, QueueEmpty

CAPACITY = 4


@message
@dataclass
class M:
    n: int = 0


class QueueModel:
    """What the queue should hold: entries (priority, arrival, msg, is control)."""

    def __init__(self, strategy: BackpressureStrategy, ordering: str) -> None:
        self.strategy, self.ordering = strategy, ordering
        self.entries: list[tuple[int, int, M, bool]] = []
        self.accepted = self.taken = self.dropped = self.rejected = self.control = 0

    def data(self) -> int:
        """Data messages queued: control messages take no room."""
        return sum(1 for e in self.entries if not e[3])

    def evict_oldest_data(self) -> None:
        data = [i for i, e in enumerate(self.entries) if not e[3]]
        self.entries.pop(min(data, key=lambda i: self.entries[i][1]))
        self.dropped += 1

    def next_index(self) -> int:
        if self.ordering == "fifo":
            return 0
        return min(
            range(len(self.entries)), key=lambda i: (-self.entries[i][0], self.entries[i][1])
        )

    def pop(self) -> M:
        self.taken += 1
        return self.entries.pop(self.next_index())[2]

    def order(self) -> list[M]:
        if self.ordering == "fifo":
            return [e[2] for e in self.entries]
        return [e[2] for e in sorted(self.entries, key=lambda e: (-e[0], e[1]))]


class QueueMachine(RuleBasedStateMachine):
    strategy = BackpressureStrategy.BLOCK
    ordering = "fifo"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.queue: MessageQueue[M] = MessageQueue(CAPACITY, self.strategy, self.ordering)  # type: ignore[arg-type]
        self.model = QueueModel(self.strategy, self.ordering)
        self.arrivals = itertools.count()
        self.paused = False

    def teardown(self) -> None:
        self.loop.close()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def offer(self, msg: M) -> None:
        """Model of put_nowait."""
        model = self.model
        if model.data() >= CAPACITY:
            if self.strategy is BackpressureStrategy.DROP_OLDEST:
                model.evict_oldest_data()
            else:
                if self.strategy is BackpressureStrategy.REJECT:
                    model.rejected += 1
                with pytest.raises(QueueFullError):
                    self.queue.put_nowait(msg)
                return
        model.entries.append((msg.priority, next(self.arrivals), msg, False))
        model.accepted += 1
        self.queue.put_nowait(msg)

    @rule(priority=st.integers(0, 3))
    def put_control(self, priority: int) -> None:
        """A control message goes in whatever the strategy and however full."""
        msg = M(priority=priority)
        self.model.entries.append((priority, next(self.arrivals), msg, True))
        self.model.accepted += 1
        self.model.control += 1
        self.queue.put_control(msg)

    @rule(priority=st.integers(0, 3))
    def put_nowait(self, priority: int) -> None:
        self.offer(M(priority=priority))

    @rule(priority=st.integers(0, 3))
    def put_with_timeout(self, priority: int) -> None:
        msg = M(priority=priority)
        full = self.model.data() >= CAPACITY
        if full and self.strategy is BackpressureStrategy.BLOCK:
            with pytest.raises(QueueTimeoutError):
                self.run(self.queue.put(msg, timeout=0.001))
            return
        if full and self.strategy is BackpressureStrategy.REJECT:
            self.model.rejected += 1
            with pytest.raises(QueueFullError):
                self.run(self.queue.put(msg, timeout=0.001))
            return
        if full:
            self.model.evict_oldest_data()
        self.model.entries.append((priority, next(self.arrivals), msg, False))
        self.model.accepted += 1
        self.run(self.queue.put(msg, timeout=0.001))

    @rule()
    def get_nowait(self) -> None:
        if self.paused or not self.model.entries:
            with pytest.raises(QueueEmpty):
                self.queue.get_nowait()
        else:
            assert self.queue.get_nowait() is self.model.pop()

    @rule()
    def get_with_timeout(self) -> None:
        if self.paused or not self.model.entries:
            with pytest.raises(QueueTimeoutError):
                self.run(self.queue.get(timeout=0.001))
        else:
            assert self.run(self.queue.get(timeout=0.001)) is self.model.pop()

    @rule(n=st.integers(1, 6))
    def get_batch(self, n: int) -> None:
        expected = (
            []
            if self.paused
            else [self.model.pop() for _ in range(min(n, len(self.model.entries)))]
        )
        assert self.queue.get_batch_nowait(n) == expected

    @rule(priority=st.integers(0, 3))
    def cancel_a_woken_getter(self, priority: int) -> None:
        """A getter woken by a put and cancelled before it runs takes nothing."""
        if self.model.entries or self.paused:
            return
        getter = self.loop.create_task(self.queue.get())
        self.run(asyncio.sleep(0))
        self.offer(M(priority=priority))
        getter.cancel()
        self.run(asyncio.gather(getter, return_exceptions=True))
        assert getter.cancelled()

    @rule(priority=st.integers(0, 3))
    def cancel_a_blocked_putter(self, priority: int) -> None:
        """A putter cancelled while it waits for room inserts nothing."""
        if self.model.data() < CAPACITY or self.strategy is not BackpressureStrategy.BLOCK:
            return
        putter = self.loop.create_task(self.queue.put(M(priority=priority)))
        self.run(asyncio.sleep(0))
        putter.cancel()
        self.run(asyncio.gather(putter, return_exceptions=True))
        assert putter.cancelled()

    @rule()
    def pause(self) -> None:
        self.queue.pause_get()
        self.paused = True

    @rule()
    def resume(self) -> None:
        self.queue.resume_get()
        self.paused = False

    @invariant()
    def matches_the_model(self) -> None:
        q, m = self.queue, self.model
        assert len(q) == len(m.entries) and m.data() <= CAPACITY
        assert q.full() == (m.data() >= CAPACITY)
        assert q.snapshot() == m.order()
        assert (q.accepted, q.taken, q.dropped, q.rejected, q.control) == (
            m.accepted,
            m.taken,
            m.dropped,
            m.rejected,
            m.control,
        )
        # The books balance: every accepted message is queued, taken or dropped.
        assert q.accepted == q.taken + len(q) + q.dropped


SETTINGS = settings(max_examples=60, stateful_step_count=40, deadline=None)


def machine(strategy: BackpressureStrategy, ordering: str) -> type[QueueMachine]:
    return type(
        f"Queue_{strategy.name}_{ordering}",
        (QueueMachine,),
        {"strategy": strategy, "ordering": ordering},
    )


TestBlockFifo = SETTINGS(machine(BackpressureStrategy.BLOCK, "fifo")).TestCase
TestBlockPriority = SETTINGS(machine(BackpressureStrategy.BLOCK, "priority")).TestCase
TestRejectFifo = SETTINGS(machine(BackpressureStrategy.REJECT, "fifo")).TestCase
TestRejectPriority = SETTINGS(machine(BackpressureStrategy.REJECT, "priority")).TestCase
TestDropOldestFifo = SETTINGS(machine(BackpressureStrategy.DROP_OLDEST, "fifo")).TestCase
TestDropOldestPriority = SETTINGS(machine(BackpressureStrategy.DROP_OLDEST, "priority")).TestCase
