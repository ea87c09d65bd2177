"""Links between pipeline workers for records that stay on a device: by reference, or
through a device ring.

Between a worker and a downstream worker whose stages share one backend that keeps rows
on a device (``capabilities.device_rings``, see :mod:`pydotcompute.backend`), a
RecordBatch whose values are that backend's arrays goes through a :class:`RingLink`.
A small :class:`RingRows` message stands for its rows in the consumer's queue, in order
with everything else the consumer receives; the consumer turns it back into the batch
when it takes the message. A RingRows names its link (``"producer->consumer"``), the
consumer finds the link among those into it (``StagePorts.rings_in``), so the message
itself is plain data with a wire form. One link per (producer worker, consumer worker)
pair: one sender's messages arrive in the order it sent them.

A link moves rows one of two ways, fixed when it is made:

* **By reference** (``ring_rows = "auto"``, the default): in one process on one device a
  ring would copy every row twice for nothing, so the RingRows carries the batch's
  array itself. The link bounds the rows in flight, counted on the host: at most
  :data:`RING_BYTES` of rows or two of the largest batch seen (or declared by the
  producer's ``max_batch_rows``), whichever is more, so the bound grows with the traffic
  and no batch is ever too big for it.
* **Through a device ring** (``ring_rows`` a number): the rows are pushed into a ring of
  the backend (one kernel launch) and popped by the consumer (one launch). The host
  drives every push and pop in stream order, so it keeps an exact mirror of the ring's
  head and tail and neither side waits for the device. Planning refuses a ring that
  cannot hold two of the largest batch its producer declares; a batch bigger than the
  ring all the same goes by reference through the host queue, never split, refused or
  evicted for its size.

Backpressure is the consumer's strategy, applied to rows in flight:

* ``block``: a batch waits until there is room for it (a batch bigger than the whole
  bound waits until the link is empty); nothing is lost.
* ``reject``: a batch that does not fit now is refused whole (:class:`QueueFullError`),
  as a full REJECT queue refuses a message; the sender counts its records as rejected.
  A batch bigger than the bound is refused only while other rows are in flight.
* ``drop_oldest``: every batch goes in. A ring evicts its oldest rows, and a RingRows
  whose rows were evicted comes out short (or not at all); evicted rows are counted.
  By reference the host queue evicts whole messages, and counts them.

Rows whose RingRows never arrived (refused or evicted by a REJECT or DROP_OLDEST host
queue, which counts that message) are skipped when the pair's next RingRows is taken.
RingRows a stopped consumer left in its queue are turned back into records (numpy) in
the shutdown report by :func:`recover_ring_rows`, so a report never points into a ring.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol
from uuid import UUID

from ..compute import to_host
from ..errors import InvalidArgumentError, MessageValidationError, QueueFullError
from ..runtime import BackpressureStrategy, KernelLeftovers, ShutdownReport, message, new_message_id
from ._records import RecordBatch, root_id

__all__ = [
    "RING_BYTES",
    "DeviceQueue",
    "RingLink",
    "RingRows",
    "recover_ring_rows",
]

# A producer waiting for room looks this often whether its consumer still accepts.
_ROOM_POLL_S = 0.05
#: The least bound of a by-reference link ("auto"), in bytes of rows in flight per
#: (producer worker, consumer worker) pair, whatever the width; two of the largest batch
#: when that is more.
RING_BYTES = 64 << 20


class DeviceQueue(Protocol):
    """What a backend's ``make_ring`` returns: a bounded FIFO of rows on the device
    that never overwrites unless its strategy is drop_oldest (see
    ``pydotcompute_triton.DeviceRing``). Neither call may wait for the device."""

    def push_device(self, rows: Any) -> Any:
        """Append ``rows``; under block/reject only as many as fit."""
        ...

    def pop_device(self, max_rows: int) -> tuple[Any, Any, Any]:
        """Remove up to ``max_rows`` oldest rows: ``(rows, meta, count)``; ``rows`` has
        ``min(max_rows, capacity)`` rows of which the first ``count`` were popped."""
        ...


@message(name="pydotcompute.RingRows")
@dataclasses.dataclass
class RingRows:
    """A RecordBatch on its way through the link named ``ring`` (a
    :attr:`RingLink.name`): rows ``start .. start+count-1`` of that link, by reference in
    ``values`` or waiting in the link's device ring, with everything else of the batch
    kept here on the host.

    Internal traffic of pipelines: the stage loop turns it back into a RecordBatch
    before stage code sees it. ``len()`` is its record count.
    """

    ring: str
    start: int
    count: int
    record_ids: Any
    keys: Any = None
    counts: Any = None
    columns: tuple[str, ...] = ()
    field: str = "values"
    message_id: UUID = dataclasses.field(default_factory=new_message_id)
    priority: int = 128
    correlation_id: UUID | None = None
    deadline: float | None = None
    #: By reference: the batch's array itself (None: the rows wait in the ring).
    values: Any = None

    def __len__(self) -> int:
        return self.count


class RingLink:
    """The link from one producer worker to one consumer worker (see the module doc),
    and the host's count of the rows in flight through it.

    ``capacity`` None links by reference; a number links through a device ring of that
    many rows, which ``backend.make_ring(capacity, like, backpressure)`` builds on the
    first batch sent (it needs the rows' width and dtype). ``make_ring`` may return None:
    then rows like those travel by reference through the host queue, unbounded by the
    link. ``max_batch_rows`` is the most rows of one batch the producer declares it emits
    (None: unknown). ``check_consumer()`` raises (as a send would) once the consumer takes
    no more messages; a producer waiting for room calls it, so a stopped consumer cannot
    hang it. :attr:`name` (``"producer->consumer"``) is what the RingRows through it carry.
    """

    __slots__ = (
        "_backend",
        "_head",
        "_key",
        "_make",
        "_requested",
        "_ring",
        "_room",
        "_row_bytes",
        "_tail",
        "backpressure",
        "by_reference",
        "capacity",
        "check_consumer",
        "consumer",
        "largest_batch",
        "name",
        "rows_dropped",
        "rows_rejected",
        "rows_skipped",
    )

    def __init__(
        self,
        backend: Any,
        capacity: int | None,
        backpressure: BackpressureStrategy,
        consumer: str,
        check_consumer: Callable[[], None],
        *,
        producer: str,
        max_batch_rows: int | None = None,
    ) -> None:
        if capacity is not None and (type(capacity) is not int or capacity < 1):
            raise InvalidArgumentError(
                f"a ring needs a positive int capacity or None; got {capacity!r}"
            )
        self._backend = backend
        self._make = backend.make_ring
        self._requested = capacity
        #: Whether batches go by reference (True) or through a device ring.
        self.by_reference = capacity is None
        #: Most rows in flight: the ring's rows, or by reference the bound (known once
        #: the first batch told the row size; it grows with the largest batch).
        self.capacity = capacity or 0
        #: The largest batch the link has seen or the producer declares, in rows.
        self.largest_batch = max_batch_rows or 0
        self.backpressure = backpressure
        self.consumer = consumer
        #: The link's name, unique per (producer worker, consumer worker) pair.
        self.name = f"{producer}->{consumer}"
        self.check_consumer = check_consumer
        self._ring: DeviceQueue | None = None
        self._key: tuple[Any, ...] | None = None  # (width, dtype, device) the ring holds
        self._row_bytes = 0  # by reference: bytes of one row of the first batch
        self._head = 0  # sequence number of the oldest row in flight
        self._tail = 0  # sequence number the next row sent gets
        self._room = asyncio.Event()
        self.rows_dropped = 0  #: rows evicted by drop_oldest before the consumer took them
        self.rows_rejected = 0  #: rows refused under reject
        self.rows_skipped = 0  #: rows whose RingRows never reached the consumer

    def __len__(self) -> int:
        """Rows in flight now (the host's count)."""
        return self._tail - self._head

    @property
    def ring(self) -> DeviceQueue | None:
        """The device ring, once the first batch built it (None by reference)."""
        return self._ring

    def holds(self, values: Any) -> bool:
        """Whether rows like ``values`` (a 2-D array) go through this link; a ring is
        built on first use. False sends the batch by reference through the host queue."""
        if self.by_reference:
            self._grow_bound(values)
            return True
        key = (values.shape[1], values.dtype, getattr(values, "device", None))
        if values.shape[0] > self.capacity:
            return False  # never split, refused or evicted for its size: by reference
        if self._ring is None:
            if self._key is not None:  # make_ring declined these rows before
                return key != self._key and self._try_make(values, key)
            return self._try_make(values, key)
        return key == self._key

    def _grow_bound(self, values: Any) -> None:
        """Size the by-reference bound from the traffic: RING_BYTES of rows, or two of
        the largest batch, whichever is more."""
        if not self._row_bytes:
            width = values.shape[1] if values.ndim > 1 else 1
            self._row_bytes = max(1, width * getattr(values.dtype, "itemsize", 4))
        self.largest_batch = max(self.largest_batch, values.shape[0])
        self.capacity = max(RING_BYTES // self._row_bytes, 2 * self.largest_batch, 1)

    def _try_make(self, values: Any, key: tuple[Any, ...]) -> bool:
        self._key = key
        ring = self._make(self.capacity, values, self.backpressure)
        if ring is None:
            return False
        self._ring = ring
        return True

    # -- producer side -------------------------------------------------------------------

    async def put(self, batch: RecordBatch, deliver: Callable[[RingRows], Awaitable[None]]) -> None:
        """Send ``batch``'s rows and ``deliver`` the RingRows standing for them. Call
        :meth:`holds` first.

        Raises:
            QueueFullError: reject, and the batch does not fit now.
            Whatever ``deliver`` or ``check_consumer`` raises (a consumer that stopped
            while this waited for room).
        """
        n = len(batch)
        strategy = self.backpressure
        if strategy is BackpressureStrategy.DROP_OLDEST:
            if self._ring is not None:
                self._ring.push_device(batch.values)
                start = self._tail
                self._tail += n
                head = max(self._head, self._tail - self.capacity)
                self.rows_dropped += head - self._head
                self._head = head
                await deliver(self._rows(batch, start, None))
                return
            await self._send_by_reference(batch, deliver)
            return
        if strategy is BackpressureStrategy.REJECT:
            if not self._fits(n):
                self.rows_rejected += n
                raise QueueFullError(
                    f"the link into {self.consumer!r} has room for "
                    f"{max(0, self.capacity - len(self))} rows; a batch of {n} was refused"
                )
        else:
            while not self._fits(n):
                await self._wait_for_room()
        if self._ring is not None:
            self._ring.push_device(batch.values)
            start = self._tail
            self._tail += n
            await deliver(self._rows(batch, start, None))
            return
        await self._send_by_reference(batch, deliver)

    def _fits(self, n: int) -> bool:
        """Room for ``n`` more rows now; a batch bigger than the bound fits an empty link."""
        return len(self) + n <= self.capacity or len(self) == 0

    async def _send_by_reference(
        self, batch: RecordBatch, deliver: Callable[[RingRows], Awaitable[None]]
    ) -> None:
        start = self._tail
        self._tail += len(batch)
        try:
            await deliver(self._rows(batch, start, batch.values))
        except BaseException:
            if self._tail == start + len(batch):  # nothing sent since: not in flight
                self._tail = start
            raise

    async def _wait_for_room(self) -> None:
        self._room.clear()
        try:
            await asyncio.wait_for(self._room.wait(), _ROOM_POLL_S)
        except TimeoutError:
            self.check_consumer()

    def _rows(self, batch: RecordBatch, start: int, values: Any) -> RingRows:
        return RingRows(
            ring=self.name,
            start=start,
            count=len(batch),
            record_ids=batch.record_ids,
            keys=batch.keys,
            counts=batch.counts,
            columns=batch.columns,
            field=batch.field,
            correlation_id=root_id(batch),
            values=values,
        )

    # -- consumer side -------------------------------------------------------------------

    def take(self, rows: RingRows) -> RecordBatch | None:
        """``rows``' records as a RecordBatch: by reference its own array, else popped
        out of the ring, all of them or under drop_oldest those not evicted (None when
        every one was).

        Raises:
            MessageValidationError: ``rows`` came through another link, or through a
                ring this link does not have.
        """
        ring = self._ring
        if rows.ring != self.name or (rows.values is None and ring is None):
            raise MessageValidationError(
                f"RingRows.ring is {rows.ring!r}, but this is ring {self.name!r}"
                + ("" if rows.ring != self.name else ", which has never been written")
            )
        if rows.start > self._head:  # rows of RingRows that never arrived
            gap = rows.start - self._head
            if ring is not None:
                ring.pop_device(gap)
            self._head += gap
            self.rows_skipped += gap
        lost = self._head - rows.start
        k = rows.count - lost
        if k <= 0:
            return None
        if rows.values is not None:
            values = rows.values
        else:
            assert ring is not None
            values, _, _ = ring.pop_device(k)
        self._head += k
        self._room.set()
        return RecordBatch(
            values=values,
            record_ids=rows.record_ids[lost:] if lost else rows.record_ids,
            keys=None if rows.keys is None else rows.keys[lost:],
            counts=None if rows.counts is None else rows.counts[lost:],
            columns=rows.columns,
            field=rows.field,
            correlation_id=rows.correlation_id,
        )

    def recover(self, rows: RingRows) -> RecordBatch | None:
        """:meth:`take`, with the values brought to the host as numpy: for RingRows that
        a stopped consumer left in its queue (take them in queue order)."""
        batch = self.take(rows)
        if batch is not None:
            batch.values = to_host(self._backend, batch.values)
        return batch


def take_from_rings(batch: list[Any], rings: Mapping[str, RingLink], worker: str) -> None:
    """Turn each RingRows in ``batch`` back into its RecordBatch, in place (the list is
    what the kernel holds, so a crash dead-letters the records themselves), taking it out
    of the ring it names among ``rings`` (the links into ``worker``); a RingRows whose
    rows drop_oldest evicted, all of them, leaves the list.

    Raises:
        MessageValidationError: a RingRows names no ring into ``worker``.
    """
    if not any(type(msg) is RingRows for msg in batch):
        return
    taken = [_link(rings, msg, worker).take(msg) if type(msg) is RingRows else msg for msg in batch]
    batch[:] = [msg for msg in taken if msg is not None]


def _link(rings: Mapping[str, RingLink], rows: RingRows, worker: str) -> RingLink:
    link = rings.get(rows.ring)
    if link is None:
        known = ", ".join(map(repr, rings)) or "none"
        raise MessageValidationError(
            f"RingRows.ring names {rows.ring!r}, which is no ring into worker {worker!r} "
            f"(its rings: {known})"
        )
    return link


def recover_ring_rows(report: ShutdownReport, rings: Mapping[str, RingLink]) -> ShutdownReport:
    """``report`` with every RingRows a kernel left unprocessed replaced by its records
    as a numpy RecordBatch, taken out of the ring it names among ``rings`` (by
    :attr:`RingLink.name`) in queue order (one whose rows drop_oldest evicted, all of
    them, leaves the report: the ring counted them).

    Raises:
        MessageValidationError: a RingRows names none of ``rings``.
    """
    kernels: dict[str, KernelLeftovers] = {}
    for kid, left in report.kernels.items():
        if any(type(msg) is RingRows for msg in left.unprocessed):
            recovered = (
                _link(rings, msg, kid).recover(msg) if type(msg) is RingRows else msg
                for msg in left.unprocessed
            )
            left = dataclasses.replace(
                left, unprocessed=tuple(msg for msg in recovered if msg is not None)
            )
        kernels[kid] = left
    return dataclasses.replace(report, kernels=kernels)
