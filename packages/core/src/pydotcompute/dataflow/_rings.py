"""Device rings between pipeline workers: the queue for records that stay on a device.

Between a worker and a downstream worker whose stages share one backend that keeps rows
in device rings (``capabilities.device_rings``, see :mod:`pydotcompute.backend`), a
RecordBatch whose values are that backend's arrays does not wait in the host queue:
its rows are pushed into a ring (one kernel launch) and a small :class:`RingRows`
message takes its place in the consumer's queue, in order with everything else the
consumer receives. The consumer pops the rows (one launch) when it takes the message.
A RingRows names its ring (``"producer->consumer"``), it does not carry it: the consumer
finds the ring among the links into it (``StagePorts.rings_in``), so the message itself is
plain data with a wire form. The ring is device memory that both workers of the pair use,
so the two must share a device (and a process): rings link workers of one backend only.

The host drives every push and pop of a ring, in stream order, so it keeps an exact
mirror of the ring's head and tail: neither side waits for the device to learn how many
rows moved. There is one ring per (producer worker, consumer worker) pair, because one
sender's messages arrive in the order it sent them: rows leave a ring in the order of
their RingRows.

Backpressure is the consumer's strategy, applied to rows:

* ``block``: a batch larger than the free room goes in pieces, each once the consumer
  has popped enough; nothing is lost.
* ``reject``: a batch that does not fit is refused whole (:class:`QueueFullError`), as
  a full REJECT queue refuses a message; the sender counts its records as rejected.
* ``drop_oldest``: every batch goes in and the ring evicts its oldest rows; a RingRows
  whose rows were evicted comes out short (or not at all). Evicted rows are counted.

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
#: The size of a ring whose capacity is left to the link ("auto"): one ring per
#: (producer worker, consumer worker) pair, so the bound is per pair, whatever the width.
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
    """A RecordBatch whose rows wait in a device ring: rows ``start .. start+count-1``
    of the ring named ``ring`` (a :attr:`RingLink.name`), with everything else of the
    batch kept here on the host.

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

    def __len__(self) -> int:
        return self.count


class RingLink:
    """The device ring from one producer worker to one consumer worker, and the host's
    mirror of its counters.

    ``backend.make_ring(capacity, like, backpressure)`` builds the ring on the first
    batch sent (it needs the rows' width and dtype) and may return None: then rows
    like those are not ringed and batches travel by reference through the host queue.
    A ``capacity`` of None sizes the ring to :data:`RING_BYTES` for those rows.
    ``check_consumer()`` raises (as a send would) once the consumer takes no more
    messages; a producer waiting for room calls it, so a stopped consumer cannot hang it.
    :attr:`name` (``"producer->consumer"``) is what the RingRows through it carry.
    """

    __slots__ = (
        "_backend",
        "_head",
        "_key",
        "_make",
        "_requested",
        "_ring",
        "_room",
        "_tail",
        "backpressure",
        "capacity",
        "check_consumer",
        "consumer",
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
    ) -> None:
        if capacity is not None and (type(capacity) is not int or capacity < 1):
            raise InvalidArgumentError(
                f"a ring needs a positive int capacity or None; got {capacity!r}"
            )
        self._backend = backend
        self._make = backend.make_ring
        self._requested = capacity
        #: Rows the ring holds (for "auto", known once the first batch built the ring).
        self.capacity = capacity or 0
        self.backpressure = backpressure
        self.consumer = consumer
        #: The ring's name, unique per (producer worker, consumer worker) pair.
        self.name = f"{producer}->{consumer}"
        self.check_consumer = check_consumer
        self._ring: DeviceQueue | None = None
        self._key: tuple[Any, ...] | None = None  # (width, dtype, device) the ring holds
        self._head = 0  # sequence number of the oldest row in the ring
        self._tail = 0  # sequence number the next pushed row gets
        self._room = asyncio.Event()
        self.rows_dropped = 0  #: rows evicted by drop_oldest before the consumer took them
        self.rows_rejected = 0  #: rows refused under reject
        self.rows_skipped = 0  #: rows whose RingRows never reached the consumer

    def __len__(self) -> int:
        """Rows in the ring now (the host's mirror)."""
        return self._tail - self._head

    @property
    def ring(self) -> DeviceQueue | None:
        """The device ring, once the first batch built it."""
        return self._ring

    def holds(self, values: Any) -> bool:
        """Whether rows like ``values`` (a 2-D backend array) go through this ring,
        building the ring on first use."""
        key = (values.shape[1], values.dtype, getattr(values, "device", None))
        if self._ring is None:
            if self._key is not None:  # make_ring declined these rows before
                return key != self._key and self._try_make(values, key)
            return self._try_make(values, key)
        return key == self._key

    def _try_make(self, values: Any, key: tuple[Any, ...]) -> bool:
        self._key = key
        capacity = self._requested
        if capacity is None:
            row_bytes = max(1, values.shape[1] * getattr(values.dtype, "itemsize", 4))
            capacity = max(1, RING_BYTES // row_bytes)
        self.capacity = capacity
        ring = self._make(capacity, values, self.backpressure)
        if ring is None:
            return False
        self._ring = ring
        return True

    # -- producer side -------------------------------------------------------------------

    async def put(self, batch: RecordBatch, deliver: Callable[[RingRows], Awaitable[None]]) -> None:
        """Push ``batch``'s rows and ``deliver`` the RingRows standing for them (several,
        in order, when block splits the batch). Call :meth:`holds` first.

        Raises:
            QueueFullError: reject, and the batch does not fit.
            Whatever ``deliver`` or ``check_consumer`` raises (a consumer that stopped
            while this waited for room).
        """
        ring = self._ring
        assert ring is not None, "RingLink.put before holds()"
        n = len(batch)
        strategy = self.backpressure
        if strategy is BackpressureStrategy.DROP_OLDEST:
            ring.push_device(batch.values)
            start = self._tail
            self._tail += n
            head = max(self._head, self._tail - self.capacity)
            self.rows_dropped += head - self._head
            self._head = head
            await deliver(self._rows(batch, start, 0, n))
            return
        if strategy is BackpressureStrategy.REJECT:
            if n > self.capacity - len(self):
                self.rows_rejected += n
                raise QueueFullError(
                    f"the device ring into {self.consumer!r} has room for "
                    f"{self.capacity - len(self)} rows; a batch of {n} was refused"
                )
            await self._push(ring, batch, 0, n, deliver)
            return
        done = 0
        while done < n:
            free = self.capacity - len(self)
            if free == 0:
                await self._wait_for_room()
                continue
            k = min(free, n - done)
            await self._push(ring, batch, done, k, deliver)
            done += k

    async def _push(
        self,
        ring: DeviceQueue,
        batch: RecordBatch,
        offset: int,
        k: int,
        deliver: Callable[[RingRows], Awaitable[None]],
    ) -> None:
        whole = offset == 0 and k == len(batch)
        ring.push_device(batch.values if whole else batch.values[offset : offset + k])
        start = self._tail
        self._tail += k
        await deliver(self._rows(batch, start, offset, k))

    async def _wait_for_room(self) -> None:
        self._room.clear()
        try:
            await asyncio.wait_for(self._room.wait(), _ROOM_POLL_S)
        except TimeoutError:
            self.check_consumer()

    def _rows(self, batch: RecordBatch, start: int, offset: int, k: int) -> RingRows:
        whole = offset == 0 and k == len(batch)
        part = slice(offset, offset + k)
        return RingRows(
            ring=self.name,
            start=start,
            count=k,
            record_ids=batch.record_ids if whole else batch.record_ids[part],
            keys=batch.keys if whole or batch.keys is None else batch.keys[part],
            counts=batch.counts if whole or batch.counts is None else batch.counts[part],
            columns=batch.columns,
            field=batch.field,
            correlation_id=root_id(batch),
        )

    # -- consumer side -------------------------------------------------------------------

    def take(self, rows: RingRows) -> RecordBatch | None:
        """Pop ``rows``' records out of the ring as a RecordBatch: all of them, or under
        drop_oldest those not evicted (None when every one was).

        Raises:
            MessageValidationError: ``rows`` came through another ring.
        """
        ring = self._ring
        if rows.ring != self.name or ring is None:
            raise MessageValidationError(
                f"RingRows.ring is {rows.ring!r}, but this is ring {self.name!r}"
                + ("" if ring is not None else ", which has never been written")
            )
        if rows.start > self._head:  # rows of RingRows that never arrived
            gap = rows.start - self._head
            ring.pop_device(gap)
            self._head += gap
            self.rows_skipped += gap
        lost = self._head - rows.start
        k = rows.count - lost
        if k <= 0:
            return None
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
