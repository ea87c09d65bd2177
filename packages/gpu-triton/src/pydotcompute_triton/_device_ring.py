"""A bounded ring of fixed-width records that lives on the device, counters included.

Host-driven micro-batches: the host launches one push or one pop kernel at a time on the
current stream; the ring's head, tail and statistics stay in a device int64 tensor that
the kernels read and update, so a push or pop costs one launch and no synchronisation.
Reading a count on the host (``push``'s accepted count, ``pop``'s row count, ``len``,
the statistics) is the only synchronisation, and every such read goes through
:meth:`DeviceRing._to_host`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import torch
from pydotcompute import BackpressureStrategy
from pydotcompute.errors import ArgumentTypeError, InvalidArgumentError

from ._availability import require_triton
from ._checks import require_tensor

__all__ = ["DeviceRing", "DeviceRingStatistics", "current_stream"]


def current_stream(device: torch.device) -> Any:
    """The current CUDA stream of ``device``, or None for a device without streams."""
    if device.type != "cuda":
        return None
    return torch.cuda.current_stream(device)


def capturing(device: torch.device) -> bool:
    """Whether a CUDA graph is being captured on ``device``'s current stream."""
    return device.type == "cuda" and bool(torch.cuda.is_current_stream_capturing())


# The kernels copy bits, so one compiled variant per element size serves every dtype of
# that size; these are the bit types the ring's storage is viewed as.
_BITS: Final = {2: torch.int16, 4: torch.int32, 8: torch.int64}
RING_DTYPES: Final = (
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.float64,
    torch.int16,
    torch.int32,
    torch.int64,
)


@dataclass(frozen=True)
class DeviceRingStatistics:
    """A snapshot of one :class:`DeviceRing`, read from the device in one transfer."""

    size: int  #: rows in the ring now
    capacity: int  #: most rows the ring holds
    backpressure: BackpressureStrategy  #: what a push into a full ring does
    pushed: int  #: rows ever accepted by push (drop_oldest: every row pushed)
    popped: int  #: rows ever handed out by pop
    dropped: int  #: rows ever evicted by drop_oldest (pushed - popped - dropped == size)
    rejected: int  #: rows ever refused by push under reject (block: the caller retries)


class DeviceRing:
    """A fixed-capacity FIFO of ``width``-wide records in a device tensor.

    ``push(rows)`` appends rows in order and returns how many it accepted; ``pop(n)``
    removes and returns up to ``n`` of the oldest rows. Optional metadata, ``meta_width``
    int64 columns per row (ids, correlation ids, a 128-bit UUID as two columns), travels
    beside the rows in the same order, copied by the same kernel launch.

    Backpressure when the ring is full:

    * ``block``: push accepts only the rows that fit, never overwrites, and counts
      nothing; the caller keeps the rest and pushes it again after a pop (awaiting room
      is the host-side actor's business, as in pydotcompute's queues).
    * ``reject``: the same, and the rows that did not fit are counted as ``rejected``.
    * ``drop_oldest``: push accepts every row, evicting the oldest rows (and, when one
      push brings more than ``capacity`` rows, its own first ones) and counting them
      as ``dropped``.

    Kernels: one launch per push or pop (see :mod:`.ops.ring_push`, :mod:`.ops.ring_pop`).
    Synchronisation with the host: ``push``, ``pop``, ``pop_with_meta``, ``len()``, the
    counter properties and :meth:`statistics` each read once; ``push_device`` and
    ``pop_device`` never do. Use from one host thread. A CUDA ring is bound to the stream
    that was current on its device when it was made: the push and pop kernels share one
    completion ticket and are ordered by that stream alone, so a push or pop on another
    stream raises instead of racing. Kernels launch under the ring's device.

    Raises (constructor):
        TritonUnavailableError: Triton kernels cannot run here, or not on ``device``.
        ValueError: a size is out of range, or ``backpressure`` is unknown.
        TypeError: ``dtype`` is not one the ring stores.
    """

    def __init__(
        self,
        capacity: int,
        width: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        backpressure: BackpressureStrategy | str = "block",
        meta_width: int = 0,
    ) -> None:
        require_triton("DeviceRing")
        from ._availability import triton_device
        from .ops._ring_layout import STATE_SIZE
        from .ops._utils import check_launchable, row_tile

        for name, value, low in (
            ("capacity", capacity, 1),
            ("width", width, 1),
            ("meta_width", meta_width, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ArgumentTypeError(
                    f"DeviceRing {name} must be an int; got {type(value).__name__}"
                )
            if value < low:
                raise InvalidArgumentError(f"DeviceRing {name} must be at least {low}; got {value}")
        if dtype not in RING_DTYPES:
            names = ", ".join(str(d).removeprefix("torch.") for d in RING_DTYPES)
            raise ArgumentTypeError(f"DeviceRing dtype must be one of {names}; got {dtype}")
        self._capacity = capacity
        self._width = width
        self._meta_width = meta_width
        self._dtype = dtype
        self._backpressure = BackpressureStrategy.parse(backpressure)
        self._device = torch.device(device) if device is not None else triton_device()
        self._data = torch.zeros((capacity, width), dtype=dtype, device=self._device)
        check_launchable(self._data, "DeviceRing storage")
        self._bits = self._data.view(_BITS[self._data.element_size()])
        # With no metadata the kernels still need a valid int64 pointer; they never use it.
        meta_rows = capacity if meta_width else 1
        self._meta = torch.zeros(
            (meta_rows, max(meta_width, 1)), dtype=torch.int64, device=self._device
        )
        self._state = torch.zeros((STATE_SIZE,), dtype=torch.int64, device=self._device)
        self._tile = row_tile(width)
        self._stream = current_stream(self._device)

    # -- what it is ---------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """Most rows the ring holds."""
        return self._capacity

    @property
    def width(self) -> int:
        """Columns per row."""
        return self._width

    @property
    def meta_width(self) -> int:
        """int64 metadata columns per row (0: no metadata)."""
        return self._meta_width

    @property
    def dtype(self) -> torch.dtype:
        """Element type of the rows."""
        return self._dtype

    @property
    def device(self) -> torch.device:
        """Where the rows and the counters live."""
        return self._device

    @property
    def backpressure(self) -> BackpressureStrategy:
        """What a push into a full ring does."""
        return self._backpressure

    @property
    def stream(self) -> Any:
        """The CUDA stream every push and pop runs on (None off CUDA)."""
        return self._stream

    def _check_stream(self, what: str) -> None:
        """Raise unless the current stream is the one the ring is bound to."""
        if self._stream is None or capturing(self._device):
            return  # a CUDA graph capture orders the ring's kernels in the graph instead
        now = current_stream(self._device)
        if now != self._stream:
            raise InvalidArgumentError(
                f"DeviceRing.{what} ran on stream {now}, but the ring is bound to stream "
                f"{self._stream} (current on {self._device} when it was made): its push and "
                "pop kernels are ordered by one stream; make that stream current, or make "
                "one ring per stream"
            )

    def __repr__(self) -> str:
        return (
            f"DeviceRing(capacity={self._capacity}, width={self._width}, dtype={self._dtype}, "
            f"device={str(self._device)!r}, backpressure={self._backpressure.value!r}, "
            f"meta_width={self._meta_width})"
        )

    # -- pushing ------------------------------------------------------------------------

    def push_device(self, rows: torch.Tensor, meta: torch.Tensor | None = None) -> torch.Tensor:
        """Push ``rows`` (``(n, width)``, the ring's dtype and device, any strides).

        ``meta`` is required when ``meta_width > 0``: ``(n, meta_width)`` int64 on the same
        device. Returns the accepted count as a one-element int64 device tensor, without
        synchronising with the host (see the class docstring for what is accepted).

        Raises:
            TypeError: ``rows``/``meta`` is not a tensor or has the wrong dtype.
            ValueError: a shape or the device does not match the ring.
        """
        from .ops._ring_layout import POLICY_BLOCK, POLICY_DROP_OLDEST, POLICY_REJECT
        from .ops.ring_push import ring_push

        rows, meta_arg = self._check_push(rows, meta)
        self._check_stream("push")
        if rows.shape[0] == 0:
            return torch.zeros((1,), dtype=torch.int64, device=self._device)
        policy = {
            BackpressureStrategy.BLOCK: POLICY_BLOCK,
            BackpressureStrategy.REJECT: POLICY_REJECT,
            BackpressureStrategy.DROP_OLDEST: POLICY_DROP_OLDEST,
        }[self._backpressure].value
        bits = rows.view(self._bits.dtype)
        return ring_push(
            bits,
            meta_arg,
            self._bits,
            self._meta,
            self._meta_width,
            self._state,
            policy,
            self._tile,
        )

    def push(self, rows: torch.Tensor, meta: torch.Tensor | None = None) -> int:
        """Push ``rows`` (and ``meta``) as :meth:`push_device` does; return the accepted count.

        Synchronises with the host once, to read the count.
        """
        return self._to_host(self.push_device(rows, meta))[0]

    def _check_push(
        self, rows: torch.Tensor, meta: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rows = require_tensor(rows, "DeviceRing.push rows")
        if rows.dim() != 2 or rows.shape[1] != self._width:
            raise InvalidArgumentError(
                f"DeviceRing.push rows must have shape (n, {self._width}); got {tuple(rows.shape)}"
            )
        if rows.dtype != self._dtype:
            raise ArgumentTypeError(f"DeviceRing.push rows must be {self._dtype}; got {rows.dtype}")
        if rows.device != self._device:
            raise InvalidArgumentError(
                f"DeviceRing.push rows are on {rows.device} but the ring is on {self._device}"
            )
        if self._meta_width == 0:
            if meta is not None:
                raise InvalidArgumentError(
                    "DeviceRing.push got meta, but the ring has meta_width=0"
                )
            return rows, self._meta
        if meta is None:
            raise InvalidArgumentError(
                f"DeviceRing.push needs meta of shape ({rows.shape[0]}, {self._meta_width}): "
                f"the ring has meta_width={self._meta_width}"
            )
        meta = require_tensor(meta, "DeviceRing.push meta")
        if meta.shape != (rows.shape[0], self._meta_width):
            raise InvalidArgumentError(
                f"DeviceRing.push meta must have shape ({rows.shape[0]}, {self._meta_width}); "
                f"got {tuple(meta.shape)}"
            )
        if meta.dtype != torch.int64:
            raise ArgumentTypeError(f"DeviceRing.push meta must be torch.int64; got {meta.dtype}")
        if meta.device != self._device:
            raise InvalidArgumentError(
                f"DeviceRing.push meta is on {meta.device} but the ring is on {self._device}"
            )
        return rows, meta

    # -- popping ------------------------------------------------------------------------

    def pop_device(self, max_rows: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pop up to ``max_rows`` of the oldest rows without synchronising with the host.

        Returns ``(rows, meta, count)``: ``rows`` is ``(m, width)`` and ``meta``
        ``(m, meta_width)`` with ``m = min(max_rows, capacity)``, of which the first
        ``count`` rows (a one-element int64 device tensor) are the popped ones, oldest first.

        Raises:
            TypeError / ValueError: ``max_rows`` is not an int >= 0.
        """
        from .ops.ring_pop import ring_pop

        if isinstance(max_rows, bool) or not isinstance(max_rows, int):
            raise ArgumentTypeError(
                f"DeviceRing.pop max_rows must be an int; got {type(max_rows).__name__}"
            )
        if max_rows < 0:
            raise InvalidArgumentError(
                f"DeviceRing.pop max_rows must be at least 0; got {max_rows}"
            )
        self._check_stream("pop")
        m = min(max_rows, self._capacity)
        if m == 0:
            return (
                torch.empty((0, self._width), dtype=self._dtype, device=self._device),
                torch.empty((0, self._meta_width), dtype=torch.int64, device=self._device),
                torch.zeros((1,), dtype=torch.int64, device=self._device),
            )
        bits, meta, count = ring_pop(
            self._bits, self._meta, self._meta_width, self._state, m, self._tile
        )
        return bits.view(self._dtype), meta, count

    def pop_with_meta(self, max_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Pop up to ``max_rows`` rows and their metadata, oldest first: ``(rows, meta)``.

        ``rows`` is ``(k, width)`` and ``meta`` ``(k, meta_width)``, ``k <= max_rows``
        (fewer when the ring holds fewer). Synchronises with the host once.
        """
        rows, meta, count = self.pop_device(max_rows)
        k = self._to_host(count)[0]
        return rows[:k], meta[:k]

    def pop(self, max_rows: int) -> torch.Tensor:
        """Pop up to ``max_rows`` rows, oldest first, as a ``(k, width)`` tensor.

        Metadata of the popped rows is discarded (use :meth:`pop_with_meta` to keep it).
        Synchronises with the host once.
        """
        return self.pop_with_meta(max_rows)[0]

    # -- counters -----------------------------------------------------------------------

    def statistics(self) -> DeviceRingStatistics:
        """Snapshot of the counters; synchronises with the host once."""
        from .ops import _ring_layout as L

        s = self._to_host(self._state)
        return DeviceRingStatistics(
            size=s[L.TAIL.value] - s[L.HEAD.value],
            capacity=self._capacity,
            backpressure=self._backpressure,
            pushed=s[L.PUSHED.value],
            popped=s[L.POPPED.value],
            dropped=s[L.DROPPED.value],
            rejected=s[L.REJECTED.value],
        )

    def __len__(self) -> int:
        """Rows in the ring now; synchronises with the host once."""
        return self.statistics().size

    @property
    def pushed(self) -> int:
        """Rows ever accepted by push; synchronises with the host once."""
        return self.statistics().pushed

    @property
    def popped(self) -> int:
        """Rows ever handed out by pop; synchronises with the host once."""
        return self.statistics().popped

    @property
    def dropped(self) -> int:
        """Rows ever evicted under drop_oldest; synchronises with the host once."""
        return self.statistics().dropped

    @property
    def rejected(self) -> int:
        """Rows ever refused under reject; synchronises with the host once."""
        return self.statistics().rejected

    @staticmethod
    def _to_host(values: torch.Tensor) -> list[int]:
        """Copy a small int64 device tensor to the host: the one synchronising call."""
        out: list[int] = values.tolist()
        return out
