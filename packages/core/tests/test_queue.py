from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest
from core_helpers import until
from pydotcompute import (
    BackpressureStrategy,
    QueueClosedError,
    QueueFullError,
    QueueTimeoutError,
    message,
)
from pydotcompute.runtime import MessageQueue


@message
@dataclass
class P:
    n: int = 0


def fill(queue: MessageQueue[P], n: int, priority: int = 128) -> list[P]:
    msgs = [P(n=i, priority=priority) for i in range(n)]
    for m in msgs:
        queue.put_nowait(m)
    return msgs


async def test_fifo_order() -> None:
    q: MessageQueue[P] = MessageQueue(10)
    msgs = fill(q, 5)
    assert [await q.get() for _ in msgs] == msgs


async def test_block_waits_for_room_and_loses_nothing() -> None:
    q: MessageQueue[P] = MessageQueue(2, BackpressureStrategy.BLOCK)
    fill(q, 2)
    extra = P(n=99)
    putter = asyncio.create_task(q.put(extra))
    await asyncio.sleep(0)
    assert not putter.done() and len(q) == 2
    first = await q.get()
    await putter
    assert first.n == 0
    assert [m.n for m in q.snapshot()] == [1, 99]
    assert (q.dropped, q.rejected) == (0, 0)


async def test_block_put_times_out_with_queue_timeout_error() -> None:
    q: MessageQueue[P] = MessageQueue(1, BackpressureStrategy.BLOCK, name="k.input")
    fill(q, 1)
    with pytest.raises(QueueTimeoutError, match=r"k\.input: no room within 0\.01 s"):
        await q.put(P(), timeout=0.01)
    assert len(q) == 1 and q.accepted == 1


async def test_block_put_nowait_on_full_queue_raises_without_counting_a_rejection() -> None:
    q: MessageQueue[P] = MessageQueue(1, BackpressureStrategy.BLOCK)
    fill(q, 1)
    with pytest.raises(QueueFullError):
        q.put_nowait(P())
    assert q.rejected == 0


async def test_reject_answers_at_once_at_the_boundary() -> None:
    q: MessageQueue[P] = MessageQueue(3, BackpressureStrategy.REJECT, name="k.input")
    kept = fill(q, 3)  # exactly capacity: all accepted
    with pytest.raises(QueueFullError, match=r"k\.input is full \(3 messages, reject\)"):
        await q.put(P(n=3))
    assert q.snapshot() == kept and q.rejected == 1


async def test_drop_oldest_keeps_the_latest_and_counts_drops() -> None:
    dropped: list[P] = []
    q: MessageQueue[P] = MessageQueue(3, BackpressureStrategy.DROP_OLDEST, on_drop=dropped.append)
    msgs = fill(q, 5)
    assert q.snapshot() == msgs[2:]
    assert dropped == msgs[:2] and q.dropped == 2 and q.accepted == 5


async def test_priority_hands_out_higher_first_fifo_within_a_priority() -> None:
    q: MessageQueue[P] = MessageQueue(10, ordering="priority")
    low = fill(q, 2, priority=1)
    high = fill(q, 2, priority=200)
    mid = fill(q, 2, priority=128)
    assert [await q.get() for _ in range(6)] == high + mid + low


async def test_priority_drop_oldest_evicts_by_arrival() -> None:
    q: MessageQueue[P] = MessageQueue(2, BackpressureStrategy.DROP_OLDEST, ordering="priority")
    first = P(n=0, priority=255)
    q.put_nowait(first)
    q.put_nowait(P(n=1, priority=1))
    q.put_nowait(P(n=2, priority=2))
    assert [m.n for m in q.snapshot()] == [2, 1]


async def test_get_times_out_with_timeout_error() -> None:
    q: MessageQueue[P] = MessageQueue(1, name="k.input")
    with pytest.raises(TimeoutError, match=r"k\.input: no message within 0\.01 s") as info:
        await q.get(timeout=0.01)
    assert isinstance(info.value, QueueTimeoutError)


async def test_timed_waiters_each_time_out_at_their_own_deadline_never_before() -> None:
    # One timer serves every timed waiter of a queue: each must still time out at its
    # own deadline, not at another's, and a message must reach one still waiting.
    q: MessageQueue[P] = MessageQueue(4)
    started = time.monotonic()  # the clock of the queue's deadlines

    async def timed_get(timeout: float) -> tuple[str, float]:
        try:
            msg = await q.get(timeout=timeout)
        except QueueTimeoutError:
            return "timed out", time.monotonic() - started
        return f"got {msg.n}", time.monotonic() - started

    short_wait = asyncio.create_task(timed_get(0.05))  # arms the timer
    long_wait = asyncio.create_task(timed_get(0.2))  # later: relies on the re-arm
    served = asyncio.create_task(timed_get(5.0))
    short, long = await asyncio.wait_for(asyncio.gather(short_wait, long_wait), 5.0)
    assert short[0] == "timed out" and 0.05 <= short[1] <= long[1]
    assert long[0] == "timed out" and long[1] >= 0.2
    q.put_nowait(P(n=7))
    assert (await served)[0] == "got 7"


async def test_a_served_timed_waiter_leaves_no_early_expiry_for_the_next() -> None:
    # The first get's deadline arms the queue's timer; it is served at once, and the
    # next get, with a later deadline, must not be expired when that timer fires.
    q: MessageQueue[P] = MessageQueue(4)
    served = asyncio.create_task(q.get(timeout=0.05))
    await asyncio.sleep(0)
    q.put_nowait(P(n=1))
    assert (await served).n == 1
    later = asyncio.create_task(q.get(timeout=0.3))
    await asyncio.sleep(0.1)  # well past the first deadline
    assert not later.done()
    q.put_nowait(P(n=2))
    assert (await later).n == 2


def test_a_queue_used_again_in_a_new_event_loop_still_times_out() -> None:
    # The first loop leaves the queue's timer armed (its waiter was served first) and
    # ends; a timed get in the next loop must not count on that timer.
    q: MessageQueue[P] = MessageQueue(4)

    async def served_at_once() -> None:
        waiting = asyncio.create_task(q.get(timeout=0.5))
        await asyncio.sleep(0)
        q.put_nowait(P())
        await waiting

    async def times_out() -> float:
        started = time.monotonic()
        with pytest.raises(QueueTimeoutError):
            await asyncio.wait_for(q.get(timeout=1.0), 10.0)
        return time.monotonic() - started

    asyncio.run(served_at_once())
    assert 1.0 <= asyncio.run(times_out()) < 10.0


async def test_zero_timeout_on_empty_queue_raises_at_once() -> None:
    q: MessageQueue[P] = MessageQueue(1)
    with pytest.raises(QueueTimeoutError):
        await q.get(timeout=0)


async def test_cancelled_getter_loses_nothing() -> None:
    q: MessageQueue[P] = MessageQueue(4)
    waiting = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    msg = P(n=1)
    q.put_nowait(msg)  # wakes the getter...
    waiting.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert q.snapshot() == [msg]
    assert await q.get() is msg


async def test_cancelled_getter_passes_its_wake_up_on() -> None:
    q: MessageQueue[P] = MessageQueue(4)
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    msg = P()
    q.put_nowait(msg)
    first.cancel()
    assert await asyncio.wait_for(second, 1.0) is msg


async def test_cancelled_putter_does_not_insert() -> None:
    q: MessageQueue[P] = MessageQueue(1)
    fill(q, 1)
    putter = asyncio.create_task(q.put(P(n=9)))
    await asyncio.sleep(0)
    putter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await putter
    await q.get()
    assert len(q) == 0 and q.accepted == 1


async def test_paused_get_hands_out_nothing_and_keeps_queueing() -> None:
    q: MessageQueue[P] = MessageQueue(4)
    q.pause_get()
    msgs = fill(q, 2)
    assert not q.ready()
    with pytest.raises(QueueTimeoutError):
        await q.get(timeout=0.01)
    assert q.get_batch_nowait(10) == []
    waiting = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.resume_get()
    assert await waiting is msgs[0]


async def test_get_error_raises_only_once_the_queue_is_empty() -> None:
    q: MessageQueue[P] = MessageQueue(4)
    msgs = fill(q, 2)
    q.fail_gets(lambda: RuntimeError("gone"))
    assert [await q.get(), await q.get()] == msgs
    with pytest.raises(RuntimeError, match="gone"):
        await q.get()


async def test_waiting_getter_is_woken_by_get_error() -> None:
    q: MessageQueue[P] = MessageQueue(4)
    waiting = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.fail_gets(lambda: RuntimeError("gone"))
    with pytest.raises(RuntimeError, match="gone"):
        await waiting


async def test_refused_waiting_put_raises_but_put_with_room_succeeds() -> None:
    q: MessageQueue[P] = MessageQueue(1)
    blocked = asyncio.create_task(q.put(P()))
    q.put_nowait(P())
    await until(lambda: q.statistics().waiting_putters == 1)
    q.refuse_waiting_puts(lambda: RuntimeError("stopping"))
    with pytest.raises(RuntimeError, match="stopping"):
        await blocked
    await q.get()
    await q.put(P())  # there is room: accepted
    assert len(q) == 1


async def test_statistics_snapshot() -> None:
    q: MessageQueue[P] = MessageQueue(2, BackpressureStrategy.REJECT, name="q")
    fill(q, 2)
    with pytest.raises(QueueFullError):
        q.put_nowait(P())
    await q.get()
    stats = q.statistics()
    assert (stats.size, stats.capacity, stats.accepted, stats.taken, stats.rejected) == (
        1,
        2,
        2,
        1,
        1,
    )
    assert stats.backpressure is BackpressureStrategy.REJECT


@pytest.mark.parametrize("capacity", [0, -1, 1.5, "3"])
def test_bad_capacity_is_refused(capacity: object) -> None:
    with pytest.raises(ValueError, match="capacity must be a positive int"):
        MessageQueue(capacity)  # type: ignore[arg-type]


def test_bad_strategy_and_ordering_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown backpressure strategy 'spill'"):
        MessageQueue(1, "spill")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ordering must be"):
        MessageQueue(1, ordering="lifo")  # type: ignore[arg-type]


def test_strategy_parses_names_and_values() -> None:
    assert BackpressureStrategy.parse("drop_oldest") is BackpressureStrategy.DROP_OLDEST
    assert BackpressureStrategy.parse("BLOCK") is BackpressureStrategy.BLOCK


async def test_a_control_message_gets_into_a_full_reject_queue_in_order() -> None:
    q: MessageQueue[P] = MessageQueue(2, BackpressureStrategy.REJECT)
    data = fill(q, 2)
    with pytest.raises(QueueFullError):
        q.put_nowait(P(n=99))
    marker = P(n=-1)
    q.put_control(marker)  # past the bound: news, not data
    assert q.snapshot() == [*data, marker] and len(q) == 3
    stats = q.statistics()
    assert (stats.accepted, stats.rejected, stats.control) == (3, 1, 1)
    assert q.get_batch_nowait(10) == [*data, marker]
    assert q.accepted == q.taken + len(q) + q.dropped


async def test_drop_oldest_evicts_the_oldest_data_never_a_control_message() -> None:
    q: MessageQueue[P] = MessageQueue(2, BackpressureStrategy.DROP_OLDEST)
    marker = P(n=-1)
    q.put_control(marker)
    _first, second = fill(q, 2)  # the marker takes no room
    assert not q.dropped and len(q) == 3 and q.full()
    newest = P(n=7)
    q.put_nowait(newest)
    assert q.snapshot() == [marker, second, newest]
    assert (q.dropped, q.control) == (1, 1)
    assert await q.get() is marker
    assert q.full() and len(q) == 2  # the marker never took any of the room


async def test_a_control_message_never_waits_and_takes_no_room() -> None:
    q: MessageQueue[P] = MessageQueue(1, BackpressureStrategy.BLOCK)
    fill(q, 1)
    q.put_control(P(n=-1))  # a full BLOCK queue: no wait
    with pytest.raises(QueueTimeoutError):
        await q.put(P(n=5), timeout=0.01)  # data still waits for data room
    await q.get()
    await asyncio.wait_for(q.put(P(n=5)), 1.0)  # one data slot freed: room
    assert [m.n for m in q.snapshot()] == [-1, 5]


async def test_a_control_message_to_a_closed_queue_raises_the_put_error() -> None:
    q: MessageQueue[P] = MessageQueue(1, BackpressureStrategy.REJECT)
    q.fail_puts(lambda: QueueClosedError("closed"))
    with pytest.raises(QueueClosedError, match="closed"):
        q.put_control(P())
    assert (q.accepted, q.control) == (0, 0)
