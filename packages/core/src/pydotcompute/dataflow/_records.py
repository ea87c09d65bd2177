"""The messages that travel through pipelines, and how records keep their identity.

Two shapes of traffic, and every stage takes both:

* **per-message**: one record per message. :class:`Record` is the library's own (the
  guide's ``RawData``); any message with a ``values`` field (or ``normalized``, as the
  guide's ``PreprocessedData``) is read the same way. A record's identity is its
  *root id*: ``correlation_id`` when set, else ``message_id``; stages give each output
  the root id of its input as ``correlation_id``, so a result answers the input that
  entered the pipeline, not the message one stage before.
* **columnar**: :class:`RecordBatch`, one message carrying a 2-D array of many records
  and their root ids as an ``(n, 2)`` uint64 array (the high and low 64 bits of each
  UUID), so ids cost nothing per record and survive splitting and merging.

:class:`StageError` carries a failure of one stage on some records to the end of the
pipeline instead of losing them; :class:`EndOfStream` marks that a producer is done.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any, Final
from uuid import UUID

import numpy as np
import numpy.typing as npt

from ..errors import ArgumentTypeError, InvalidArgumentError
from ..runtime import message, new_message_id, uuids_from_ints

__all__ = [
    "EndOfStream",
    "Record",
    "RecordBatch",
    "StageError",
    "array_to_ids",
    "ids_to_array",
    "new_record_ids",
    "payload_of",
    "record_ids_for_rows",
    "root_id",
    "row_index",
    "row_indices",
]

IdArray = npt.NDArray[np.uint64]

_MASK64: Final = (1 << 64) - 1
# RFC 4122 version-4 layout: version nibble 4 in the high half, variant bits 10 at the
# top of the low half.
_HI_CLEAR: Final = ~np.uint64(0xF000)
_HI_SET: Final = np.uint64(0x4000)
_LO_CLEAR: Final = np.uint64(0x3FFF_FFFF_FFFF_FFFF)
_LO_SET: Final = np.uint64(0x8000_0000_0000_0000)
_INDEX_LIMIT: Final = 1 << 62


# -- ids -------------------------------------------------------------------------------


def root_id(msg: Any) -> UUID:
    """The id a record is known by across the pipeline: ``correlation_id`` if set,
    else ``message_id``."""
    cid: UUID | None = msg.correlation_id
    return msg.message_id if cid is None else cid


def ids_to_array(ids: Sequence[UUID]) -> IdArray:
    """UUIDs as an ``(n, 2)`` uint64 array of (high, low) 64-bit halves."""
    out = np.empty((len(ids), 2), dtype=np.uint64)
    if ids:
        ints = [u.int for u in ids]
        out[:, 0] = [i >> 64 for i in ints]
        out[:, 1] = [i & _MASK64 for i in ints]
    return out


def array_to_ids(arr: npt.ArrayLike) -> list[UUID]:
    """The inverse of :func:`ids_to_array`.

    Raises:
        ValueError: ``arr`` is not ``(n, 2)``.
    """
    a = np.asarray(arr, dtype=np.uint64)
    if a.ndim != 2 or a.shape[1] != 2:
        raise InvalidArgumentError(f"record ids must have shape (n, 2); got {a.shape}")
    return uuids_from_ints((hi << 64) | lo for hi, lo in a.tolist())


def record_ids_for_rows(start: int, count: int, run_id: int) -> IdArray:
    """Ids for rows ``start .. start+count-1`` of one input: version-4-shaped UUIDs whose
    high half comes from ``run_id`` (pick it at random per input) and whose low half
    holds the row index, so :func:`row_indices` recovers it without a lookup table.

    Raises:
        ValueError: a row index is negative or not below ``2**62``.
    """
    if start < 0 or count < 0 or start + count > _INDEX_LIMIT:
        raise InvalidArgumentError(
            f"row indices must lie in [0, 2**62); got {start}..{start + count}"
        )
    out = np.empty((count, 2), dtype=np.uint64)
    out[:, 0] = (np.uint64(run_id & _MASK64) & _HI_CLEAR) | _HI_SET
    out[:, 1] = np.arange(start, start + count, dtype=np.uint64) | _LO_SET
    return out


def row_indices(ids: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Row indices encoded by :func:`record_ids_for_rows` in an ``(n, 2)`` id array.

    Raises:
        ValueError: ``ids`` is not ``(n, 2)``.
    """
    a = np.asarray(ids)
    if a.ndim != 2 or a.shape[1] != 2:
        raise InvalidArgumentError(f"record ids must have shape (n, 2); got {a.shape}")
    return (a[:, 1].astype(np.uint64) & _LO_CLEAR).astype(np.int64)


def row_index(record_id: UUID) -> int:
    """The row index :func:`record_ids_for_rows` encoded in one UUID."""
    return record_id.int & int(_LO_CLEAR)


def new_record_ids(n: int) -> IdArray:
    """``n`` random version-4 UUIDs as an ``(n, 2)`` id array (for records a stage
    creates, such as an aggregator's reduced rows)."""
    raw = np.frombuffer(os.urandom(16 * max(n, 0)), dtype=">u8").astype(np.uint64).reshape(-1, 2)
    raw[:, 0] = (raw[:, 0] & _HI_CLEAR) | _HI_SET
    raw[:, 1] = (raw[:, 1] & _LO_CLEAR) | _LO_SET
    return raw


# -- messages --------------------------------------------------------------------------


@message(name="pydotcompute.Record")
@dataclasses.dataclass
class Record:
    """One record, per-message mode (the guide's ``RawData``).

    ``values`` is a sequence of numbers or a 1-D numpy array; ``key`` (optional)
    routes the record in a by-key distributor and groups it in an aggregator.
    """

    values: Any
    key: int | None = None
    message_id: UUID = dataclasses.field(default_factory=new_message_id)
    priority: int = 128
    correlation_id: UUID | None = None
    deadline: float | None = None


@message(name="pydotcompute.RecordBatch")
@dataclasses.dataclass
class RecordBatch:
    """Many records in one message, columnar mode.

    Fields:
        values: ``(n, width)`` array, one record per row (float32 from the built-in
            stages). A numpy array, or a compute backend's own array (anything with
            ``__dlpack__``, such as a torch tensor on a GPU), which is kept as it is:
            between two stages on one device the records stay there, and a pipeline
            hands its results out as numpy (see :class:`pydotcompute.Emitter`).
        record_ids: ``(n, 2)`` uint64, each record's root id (see :func:`ids_to_array`).
        keys: ``(n,)`` int64 or ``None``: per-record keys (see :class:`Record`).
        columns: names of the ``width`` columns when each is a named scalar (e.g. the
            statistics ``("mean", "std")``); empty when a row is one vector.
        field: what a row's vector is called when ``columns`` is empty (``"values"``,
            or ``"normalized"`` from ``preprocess``), so writers can label it.
        counts: ``(n,)`` int64 or ``None``: how many input records each row stands for,
            set on rows an aggregator reduced.

    Construction checks shapes and dtypes and raises ``MessageValidationError``
    (a ``ValueError``) naming the field.
    """

    values: Any
    record_ids: Any
    keys: Any = None
    columns: tuple[str, ...] = ()
    field: str = "values"
    counts: Any = None
    message_id: UUID = dataclasses.field(default_factory=new_message_id)
    priority: int = 128
    correlation_id: UUID | None = None
    deadline: float | None = None

    def __post_init__(self) -> None:
        from ..errors import MessageValidationError

        values = self.values
        if type(values) is not np.ndarray and not hasattr(values, "__dlpack__"):
            values = np.asarray(values)
        shape = tuple(values.shape)
        if len(shape) != 2:
            raise MessageValidationError(
                f"RecordBatch.values must be 2-D (records, width); got shape {shape}"
            )
        n = shape[0]
        ids = np.asarray(self.record_ids)
        if ids.shape != (n, 2) or ids.dtype != np.uint64:
            raise MessageValidationError(
                f"RecordBatch.record_ids must be ({n}, 2) uint64 to match values; "
                f"got {ids.shape} {ids.dtype}"
            )
        self.values, self.record_ids = values, ids
        if self.keys is not None:
            keys = np.asarray(self.keys)
            if keys.shape != (n,) or keys.dtype.kind not in "iu":
                raise MessageValidationError(
                    f"RecordBatch.keys must be ({n},) integers or None; "
                    f"got {keys.shape} {keys.dtype}"
                )
            self.keys = keys.astype(np.int64, copy=False)
        if self.counts is not None:
            counts = np.asarray(self.counts)
            if counts.shape != (n,) or counts.dtype.kind not in "iu":
                raise MessageValidationError(
                    f"RecordBatch.counts must be ({n},) integers or None; got {counts.shape}"
                )
            self.counts = counts.astype(np.int64, copy=False)
        self.columns = tuple(self.columns)
        if self.columns and len(self.columns) != shape[1]:
            raise MessageValidationError(
                f"RecordBatch.columns names {len(self.columns)} columns but values has {shape[1]}"
            )

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def take(self, index: npt.ArrayLike, values_index: Any = None) -> RecordBatch:
        """The records at ``index`` (an int array or slice) as a new batch, same
        columns; its ``correlation_id`` is this batch's root id. ``values_index``, if
        given, is the same positions as an index of the values' own kind (a device
        tensor for values on a device), so the rows are gathered where they live."""
        return RecordBatch(
            values=self.values[index if values_index is None else values_index],
            record_ids=self.record_ids[index],
            keys=None if self.keys is None else self.keys[index],
            columns=self.columns,
            field=self.field,
            counts=None if self.counts is None else self.counts[index],
            correlation_id=root_id(self),
        )


@message(name="pydotcompute.StageError")
@dataclasses.dataclass
class StageError:
    """A stage failed on some records; they travel to the end of the pipeline as this.

    ``stage`` is the pipeline's name for the stage (``kernel`` the worker's kernel id),
    ``error`` the exception as ``"Type: text"``, ``record_ids`` the ``(n, 2)`` root ids
    of the records it failed on; for a single record ``correlation_id`` is its root id
    too. Stages downstream pass it on untouched.
    """

    stage: str
    kernel: str
    error: str
    record_ids: Any
    message_id: UUID = dataclasses.field(default_factory=new_message_id)
    priority: int = 128
    correlation_id: UUID | None = None
    deadline: float | None = None

    def __post_init__(self) -> None:
        self.record_ids = np.asarray(self.record_ids, dtype=np.uint64).reshape(-1, 2)

    def __len__(self) -> int:
        return int(self.record_ids.shape[0])


@message(name="pydotcompute.EndOfStream")
@dataclasses.dataclass
class EndOfStream:
    """A producer (``source``: a kernel id, or ``"<feeder>"``) sent everything it will.

    Control traffic of pipelines: the stage loop consumes it, stage code never sees it.
    """

    source: str
    message_id: UUID = dataclasses.field(default_factory=new_message_id)
    priority: int = 128
    correlation_id: UUID | None = None
    deadline: float | None = None


# -- reading records out of messages -----------------------------------------------------


def payload_of(msg: Any) -> tuple[Any, tuple[str, ...], str]:
    """The numbers a per-message record carries, as ``(vector, columns, field)``.

    Looks for, in order: ``values`` or ``normalized`` (a vector: ``columns`` empty,
    ``field`` its name), then ``stats`` (a mapping of named scalars: ``columns`` its
    keys), then ``result`` (one scalar, column ``"result"``).

    Raises:
        TypeError: the message has none of those fields, naming its type.
    """
    for name in ("values", "normalized"):
        value = getattr(msg, name, None)
        if value is not None:
            return value, (), name
    stats = getattr(msg, "stats", None)
    if isinstance(stats, dict) and stats:
        return list(stats.values()), tuple(stats), "stats"
    result = getattr(msg, "result", None)
    if result is not None:
        return [result], ("result",), "result"
    raise ArgumentTypeError(
        f"a {type(msg).__name__} carries no record: expected a 'values', "
        "'normalized', 'stats' or 'result' field"
    )
