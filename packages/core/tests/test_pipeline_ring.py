"""RingLink: batches through a device ring or by reference between two workers, the
host's count of the rows in flight, and each backpressure strategy applied to rows.

The ring here is a host model with pydotcompute_triton.DeviceRing's semantics (the
interpreter tests of pydotcompute-triton run the same link over the real ring). It
fills rows it was asked for but does not hold with NaN, so a mirror that ran ahead of
the ring would show up as NaN records rather than pass unnoticed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import types
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydotcompute import BackpressureStrategy, KernelStateError, QueueFullError
from pydotcompute.dataflow import RingLink, RingRows
from pydotcompute.stage import RecordBatch, record_ids_for_rows, row_indices

WIDTH = 3


class ModelRing:
    """DeviceRing's push/pop semantics over a deque of host rows."""

    def __init__(self, capacity: int, like: Any, backpressure: BackpressureStrategy) -> None:
        self.capacity = capacity
        self.width = like.shape[1]
        self.backpressure = backpressure
        self.rows: collections.deque[np.ndarray] = collections.deque()
        self.pushed = self.popped = self.dropped = 0

    def push_device(self, rows: Any) -> int:
        rows = list(np.asarray(rows))
        if self.backpressure is not BackpressureStrategy.DROP_OLDEST:
            rows = rows[: self.capacity - len(self.rows)]
        for row in rows:
            self.rows.append(row)
            if len(self.rows) > self.capacity:
                self.rows.popleft()
                self.dropped += 1
        self.pushed += len(rows)
        return len(rows)

    def pop_device(self, max_rows: int) -> tuple[np.ndarray, None, int]:
        m = min(max_rows, self.capacity)
        out = np.full((m, self.width), np.nan, dtype=np.float32)
        k = min(m, len(self.rows))
        for i in range(k):
            out[i] = self.rows.popleft()
        self.popped += k
        return out, None, k


def ok() -> None:
    return None


def make_link(
    capacity: int | None, strategy: str, check: Any = ok, max_batch_rows: int | None = None
) -> RingLink:
    backend = types.SimpleNamespace(make_ring=ModelRing)
    return RingLink(
        backend,
        capacity,
        BackpressureStrategy.parse(strategy),
        "consumer",
        check,
        producer="producer",
        max_batch_rows=max_batch_rows,
    )


def batch(start: int, n: int) -> RecordBatch:
    """Rows whose every value is the row's index, with ids that encode it."""
    values = np.repeat(np.arange(start, start + n, dtype=np.float32)[:, None], WIDTH, axis=1)
    keys = np.arange(start, start + n) % 5
    return RecordBatch(values=values, record_ids=record_ids_for_rows(start, n, 7), keys=keys)


def check_rows(got: RecordBatch) -> list[int]:
    """The batch's row indices, after checking each row holds its own index."""
    index = row_indices(got.record_ids)
    assert not np.isnan(got.values).any()
    np.testing.assert_array_equal(got.values[:, 0], index.astype(np.float32))
    np.testing.assert_array_equal(got.keys, index % 5)
    return index.tolist()


async def pump(link: RingLink, sizes: list[int], consumer_delay: float = 0.0) -> list[int]:
    """One producer putting batches of ``sizes`` through ``link``, one consumer taking
    them through an unbounded host queue; the row indices the consumer got, in order."""
    queue: asyncio.Queue[RingRows | RecordBatch | None] = asyncio.Queue()
    got: list[int] = []

    async def produce() -> None:
        start = 0
        for n in sizes:
            b = batch(start, n)
            if not link.holds(b.values):  # bigger than the ring: by reference
                assert n > link.capacity
                await queue.put(b)
            else:
                # reject refuses a batch whole; the link counts it
                with contextlib.suppress(QueueFullError):
                    await link.put(b, queue.put)
            start += n
        await queue.put(None)

    async def consume() -> None:
        while (rows := await queue.get()) is not None:
            if consumer_delay:
                await asyncio.sleep(consumer_delay)
            taken = rows if type(rows) is RecordBatch else link.take(rows)
            if taken is not None:
                got.extend(check_rows(taken))

    await asyncio.gather(produce(), consume())
    return got


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.one_of(st.none(), st.integers(1, 16)),
    sizes=st.lists(st.integers(1, 40), max_size=12),
)
def test_block_delivers_every_row_in_order(capacity: int | None, sizes: list[int]) -> None:
    link = make_link(capacity, "block")
    got = asyncio.run(pump(link, sizes))
    assert got == list(range(sum(sizes)))
    assert len(link) == 0 and link.rows_dropped == link.rows_rejected == link.rows_skipped == 0


@pytest.mark.parametrize("strategy", ["block", "reject", "drop_oldest"])
async def test_a_batch_bigger_than_the_ring_goes_whole_by_reference(strategy: str) -> None:
    """Never split, refused or evicted for its size: the link declines it, and the stage
    loop sends the batch itself through the host queue."""
    link = make_link(4, strategy)
    small, big = batch(0, 3), batch(3, 10)
    assert link.holds(small.values)
    await link.put(small, _append_to([]))
    assert not link.holds(big.values)
    assert len(link) == 3 and link.rows_rejected == link.rows_dropped == 0
    assert link.holds(batch(13, 4).values)  # one that fits still goes through the ring


@pytest.mark.parametrize("strategy", ["block", "reject", "drop_oldest"])
async def test_by_reference_the_bound_grows_with_the_largest_batch(strategy: str) -> None:
    """ring_rows auto: no ring, the arrays themselves travel; the bound in rows is
    RING_BYTES of rows or two of the largest batch, so no batch is too big for it."""
    from pydotcompute.dataflow import RING_BYTES

    link = make_link(None, strategy)
    delivered: list[RingRows] = []
    huge = RING_BYTES // (WIDTH * 4) + 5
    for start, n in ((0, 3), (3, huge)):
        b = batch(start, n)
        assert link.holds(b.values)
        await link.put(b, _append_to(delivered))
    assert link.ring is None and link.by_reference
    assert link.capacity == 2 * huge and link.largest_batch == huge
    assert len(link) == 3 + huge and link.rows_rejected == link.rows_dropped == 0
    first = link.take(delivered[0])
    assert first is not None and first.values is not None
    assert delivered[0].values is not None and first.values is delivered[0].values  # no copy
    assert check_rows(first) == [0, 1, 2]
    assert len(check_rows(link.take(delivered[1]))) == huge  # type: ignore[arg-type]
    assert len(link) == 0


async def test_by_reference_block_waits_for_room_counted_in_rows() -> None:
    link = make_link(None, "block")
    link.holds(batch(0, 1).values)
    link.capacity = 6  # a small bound, as a wide row would give
    delivered: list[RingRows] = []
    await link.put(batch(0, 4), _append_to(delivered))
    waiting = asyncio.ensure_future(link.put(batch(4, 4), _append_to(delivered)))
    await asyncio.sleep(0.02)
    assert not waiting.done() and len(delivered) == 1  # 4 + 4 > 6: it waits
    assert check_rows(link.take(delivered[0])) == [0, 1, 2, 3]  # type: ignore[arg-type]
    await asyncio.wait_for(waiting, 1.0)
    assert check_rows(link.take(delivered[1])) == [4, 5, 6, 7]  # type: ignore[arg-type]


async def test_by_reference_reject_refuses_what_does_not_fit_now() -> None:
    link = make_link(None, "reject")
    link.holds(batch(0, 1).values)
    link.capacity = 6
    delivered: list[RingRows] = []
    await link.put(batch(0, 4), _append_to(delivered))
    with pytest.raises(QueueFullError, match="room for 2 rows; a batch of 4 was refused"):
        await link.put(batch(4, 4), _append_to(delivered))
    assert link.rows_rejected == 4 and len(link) == 4


async def test_by_reference_a_refused_delivery_is_not_left_in_flight() -> None:
    link = make_link(None, "reject")
    b = batch(0, 3)
    assert link.holds(b.values)

    async def refuse(rows: RingRows) -> None:
        raise QueueFullError("the host queue is full")

    with pytest.raises(QueueFullError, match="host queue is full"):
        await link.put(b, refuse)
    assert len(link) == 0


async def test_ring_rows_name_their_ring_and_travel_on_the_wire() -> None:
    """A RingRows is plain data: it names its ring, and the consumer finds the ring among
    the links into it, so the message survives encoding like any other."""
    from pydotcompute.runtime import decode_message, encode_message

    link = make_link(8, "block")
    delivered: list[RingRows] = []
    b = batch(0, 3)
    assert link.holds(b.values)
    await link.put(b, _append_to(delivered))
    (rows,) = delivered
    copy = decode_message(encode_message(rows))
    assert type(copy) is RingRows and copy.ring == "producer->consumer"
    np.testing.assert_array_equal(copy.record_ids, rows.record_ids)
    assert check_rows(link.take(copy)) == [0, 1, 2]  # type: ignore[arg-type]


async def test_a_ring_rows_for_another_ring_is_refused_naming_both() -> None:
    from pydotcompute import KernelLeftovers, MessageValidationError, ShutdownReport
    from pydotcompute.dataflow import recover_ring_rows

    link = make_link(8, "block")
    delivered: list[RingRows] = []
    b = batch(0, 2)
    assert link.holds(b.values)
    await link.put(b, _append_to(delivered))
    stray = dataclasses.replace(delivered[0], ring="elsewhere->consumer")
    with pytest.raises(
        MessageValidationError, match=r"'elsewhere->consumer'.*'producer->consumer'"
    ):
        link.take(stray)
    left = KernelLeftovers(
        kernel_id="consumer",
        state="terminated",
        unprocessed=(stray,),
        unread=(),
        undeliverable=(),
        error=None,
        stuck=False,
    )
    report = ShutdownReport(kernels={"consumer": left}, drained=True, duration_s=0.0)
    with pytest.raises(MessageValidationError, match="no ring into worker 'consumer'"):
        recover_ring_rows(report, {link.name: link})
    assert len(link) == 2  # nothing was popped for the stray message


@settings(max_examples=60, deadline=None)
@given(capacity=st.integers(1, 16), sizes=st.lists(st.integers(1, 20), max_size=12))
def test_reject_refuses_whole_batches_that_do_not_fit_and_keeps_the_rest(
    capacity: int, sizes: list[int]
) -> None:
    link = make_link(capacity, "reject")
    got = asyncio.run(pump(link, sizes))
    # The consumer only takes what the producer delivered, so rows arrive as whole
    # batches in order; a refused batch is missing entirely.
    starts = np.cumsum([0, *sizes])
    expected: list[int] = []
    refused = 0
    for start, n in zip(starts, sizes, strict=False):
        if set(range(start, start + n)) <= set(got):
            expected.extend(range(start, start + n))
        else:
            assert not set(range(start, start + n)) & set(got)
            refused += n
    assert got == expected
    assert link.rows_rejected == refused
    # A batch bigger than the ring is never refused: it goes by reference.
    assert all(
        set(range(s, s + n)) <= set(got)
        for s, n in zip(starts, sizes, strict=False)
        if n > capacity
    )


async def test_reject_refuses_before_pushing_anything() -> None:
    link = make_link(5, "reject")
    delivered: list[RingRows] = []
    first, second = batch(0, 3), batch(3, 3)
    assert link.holds(first.values)
    await link.put(first, _append_to(delivered))
    with pytest.raises(QueueFullError, match="'consumer' has room for 2 rows; a batch of 3"):
        await link.put(second, _append_to(delivered))
    assert len(link) == 3 and link.rows_rejected == 3
    assert link.ring is not None and link.ring.pushed == 3  # type: ignore[attr-defined]
    assert check_rows(link.take(delivered[0])) == [0, 1, 2]


@settings(max_examples=60, deadline=None)
@given(capacity=st.integers(1, 16), sizes=st.lists(st.integers(1, 20), max_size=12))
def test_drop_oldest_keeps_the_newest_rows_and_counts_the_rest(
    capacity: int, sizes: list[int]
) -> None:
    async def run() -> tuple[list[int], RingLink]:
        link = make_link(capacity, "drop_oldest")
        pending: list[RingRows] = []
        start = 0
        for n in sizes:  # the consumer is away while everything is pushed
            b = batch(start, n)
            if link.holds(b.values):
                await link.put(b, _append_to(pending))
            else:  # bigger than the ring: the batch itself, by reference
                pending.append(b)  # type: ignore[arg-type]
            start += n
        got: list[int] = []
        for rows in pending:
            taken = rows if type(rows) is RecordBatch else link.take(rows)
            if taken is not None:
                got.extend(check_rows(taken))
        return got, link

    got, link = asyncio.run(run())
    # Rows through the ring: the newest `capacity` of them survive; a batch bigger than
    # the ring went by reference and loses nothing.
    ringed = [
        i
        for s, n in zip(np.cumsum([0, *sizes]), sizes, strict=False)
        if n <= capacity
        for i in range(s, s + n)
    ]
    whole = [
        i
        for s, n in zip(np.cumsum([0, *sizes]), sizes, strict=False)
        if n > capacity
        for i in range(s, s + n)
    ]
    kept = set(ringed[max(0, len(ringed) - capacity) :]) | set(whole)
    assert got == sorted(kept)
    assert link.rows_dropped == len(ringed) - len(set(ringed) & kept)
    assert link.ring is None or link.ring.dropped == link.rows_dropped  # type: ignore[attr-defined]
    assert len(link) == 0


async def test_rows_whose_message_never_arrived_are_skipped_not_handed_out() -> None:
    link = make_link(8, "reject")
    delivered: list[RingRows] = []

    async def deliver(rows: RingRows) -> None:
        if rows.start == 2:  # the host queue refused this one (a full REJECT queue)
            raise QueueFullError("full")
        delivered.append(rows)

    for start in (0, 2, 5):
        b = batch(start, 2 if start == 0 else 3)
        assert link.holds(b.values)
        with pytest.raises(QueueFullError) if start == 2 else contextlib.nullcontext():
            await link.put(b, deliver)
    assert [check_rows(link.take(rows)) for rows in delivered] == [[0, 1], [5, 6, 7]]
    assert link.rows_skipped == 3 and len(link) == 0


async def test_a_producer_waiting_for_room_stops_when_the_consumer_does() -> None:
    def stopped() -> None:
        raise KernelStateError("kernel 'consumer' is stopped and accepts no messages")

    link = make_link(2, "block", check=stopped)
    delivered: list[RingRows] = []
    for start in (0, 2):
        b = batch(start, 2)
        assert link.holds(b.values)
        if start == 0:
            await link.put(b, _append_to(delivered))
            continue
        with pytest.raises(KernelStateError, match="'consumer' is stopped"):
            await asyncio.wait_for(link.put(b, _append_to(delivered)), 2.0)
    assert [rows.count for rows in delivered] == [2]  # the first went in


def test_rows_the_ring_cannot_hold_travel_by_reference() -> None:
    declined = RingLink(
        types.SimpleNamespace(make_ring=lambda *args: None),
        4,
        BackpressureStrategy.BLOCK,
        "consumer",
        ok,
        producer="producer",
    )
    assert not declined.holds(np.zeros((2, 3), np.float32))
    assert declined.ring is None
    link = make_link(4, "block")
    assert link.holds(np.zeros((2, WIDTH), np.float32))
    assert not link.holds(np.zeros((2, WIDTH + 1), np.float32))  # another width
    assert not link.holds(np.zeros((2, WIDTH), np.float64))  # another dtype


def test_a_ring_needs_a_positive_capacity() -> None:
    with pytest.raises(ValueError, match="positive int capacity or None; got 0"):
        make_link(0, "block")


def test_an_auto_link_has_no_ring_and_bounds_ring_bytes_of_rows() -> None:
    from pydotcompute.dataflow import RING_BYTES

    link = make_link(None, "reject")
    assert link.holds(np.zeros((2, WIDTH), np.float32))
    assert link.ring is None and link.capacity == RING_BYTES // (WIDTH * 4)
    wide = make_link(None, "block")
    assert wide.holds(np.zeros((1, 1 << 20), np.float64))  # an 8 MiB row
    assert wide.capacity == 8
    declared = make_link(None, "block", max_batch_rows=RING_BYTES)
    assert declared.holds(np.zeros((2, WIDTH), np.float32))
    assert declared.capacity == 2 * RING_BYTES  # two of the declared largest batch


def _append_to(out: list[RingRows]) -> Any:
    async def deliver(rows: RingRows) -> None:
        out.append(rows)

    return deliver


def test_only_stages_that_declare_it_are_fed_through_rings() -> None:
    from pipeline_helpers import FLAKY, SCALE

    assert SCALE.reads_rings
    # A kernel of its own would not know a RingRows: it gets batches by reference.
    assert not FLAKY.reads_rings


async def test_a_shutdown_report_gets_the_records_back_out_of_the_rings() -> None:
    from pydotcompute import KernelLeftovers, ShutdownReport
    from pydotcompute.dataflow import recover_ring_rows
    from pydotcompute.stage import EndOfStream

    link = make_link(8, "drop_oldest")
    left: list[Any] = []
    for start, n in ((0, 3), (3, 4), (7, 5)):  # 12 rows into 8: the first 4 are evicted
        b = batch(start, n)
        assert link.holds(b.values)
        await link.put(b, _append_to(left))
    marker = EndOfStream(source="producer")
    report = ShutdownReport(
        kernels={
            "consumer": KernelLeftovers(
                kernel_id="consumer",
                state="deactivated",
                unprocessed=(*left, marker),
                unread=(),
                undeliverable=(),
                error=None,
                stuck=False,
            )
        },
        drained=True,
        duration_s=0.0,
    )
    recovered = recover_ring_rows(report, {link.name: link}).kernels["consumer"].unprocessed
    # The first RingRows lost all its rows, the second one of its four.
    assert [type(m).__name__ for m in recovered] == ["RecordBatch", "RecordBatch", "EndOfStream"]
    assert [check_rows(m) for m in recovered[:2]] == [[4, 5, 6], [7, 8, 9, 10, 11]]
    assert all(type(m.values) is np.ndarray for m in recovered[:2])
    assert recovered[2] is marker and len(link) == 0 and link.rows_dropped == 4
