"""Turning what a stage took from its queue into arrays, and arrays back into messages.

A stage's ``receive_batch`` may hold per-message records, :class:`RecordBatch`es and
:class:`StageError`s at once. :func:`sort_batch` separates them; :func:`stack_records`
stacks per-message records into as few 2-D float arrays as their widths allow, and
sets aside (never drops) the records whose payload is not a numeric vector.

Values keep their precision: float arrays keep their dtype, and anything else numeric
(Python floats and ints, integer arrays) becomes float64, the precision a Python float
has, never float32 behind the user's back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ._records import EndOfStream, RecordBatch, StageError, payload_of
from ._rings import RingRows

__all__ = [
    "RecordGroup",
    "Sorted",
    "as_float_array",
    "count_records",
    "record_count",
    "sort_batch",
    "stack_records",
]


def as_float_array(data: Any) -> npt.NDArray[np.floating[Any]]:
    """``data`` as a numpy float array: a float array as it is, other numbers as float64.

    Raises:
        ValueError, TypeError: ``data`` is not numbers (numpy's own errors).
    """
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        return arr
    return np.asarray(data, dtype=np.float64)


@dataclasses.dataclass
class Sorted:
    """One received batch, by kind, each list in arrival order."""

    records: list[Any]  #: per-message records
    batches: list[RecordBatch]  #: columnar batches
    errors: list[StageError]  #: to pass on untouched
    ends: list[EndOfStream]  #: end-of-stream markers (control traffic of the stage loop)


def sort_batch(batch: Sequence[Any]) -> Sorted:
    """Split a received batch into records, batches, errors and end markers."""
    if batch:
        first = type(batch[0])
        if (
            first is not RecordBatch
            and first is not StageError
            and first is not EndOfStream
            and all(type(m) is first for m in batch)
        ):
            return Sorted(list(batch), [], [], [])  # the per-message common case
    records: list[Any] = []
    batches: list[RecordBatch] = []
    errors: list[StageError] = []
    ends: list[EndOfStream] = []
    for msg in batch:
        cls = type(msg)
        if cls is RecordBatch:
            batches.append(msg)
        elif cls is StageError:
            errors.append(msg)
        elif cls is EndOfStream:
            ends.append(msg)
        else:
            records.append(msg)
    return Sorted(records, batches, errors, ends)


@dataclasses.dataclass
class RecordGroup:
    """Per-message records of one width, stacked: row ``i`` of ``values`` is
    ``records[i]``'s vector."""

    records: list[Any]
    values: npt.NDArray[np.floating[Any]]
    columns: tuple[str, ...]
    field: str


def stack_records(records: Sequence[Any]) -> tuple[list[RecordGroup], list[tuple[Any, str]]]:
    """Stack per-message records' payloads (see :func:`payload_of`) into float arrays
    (see :func:`as_float_array`).

    Returns ``(groups, bad)``: one group per distinct vector width (a single group, in
    order, in the usual case), and ``(record, reason)`` for each record whose payload is
    missing or not a 1-D numeric vector.
    """
    if not records:
        return [], []
    first = records[0]
    cls = type(first)
    try:
        _, columns, field = payload_of(first)
    except TypeError:
        return _stack_slowly(records)
    if field in ("values", "normalized") and all(type(r) is cls for r in records):
        vectors = [getattr(r, field) for r in records]  # one type: one field for all
    else:
        try:
            payloads = [payload_of(r) for r in records]
        except TypeError:
            return _stack_slowly(records)
        if not all(p[1] == columns and p[2] == field for p in payloads):
            return _stack_slowly(records)
        vectors = [p[0] for p in payloads]
    try:
        values = as_float_array(vectors)
    except (TypeError, ValueError):
        return _stack_slowly(records)
    if values.ndim != 2:
        return _stack_slowly(records)
    return [RecordGroup(list(records), values, columns, field)], []


def _stack_slowly(records: Sequence[Any]) -> tuple[list[RecordGroup], list[tuple[Any, str]]]:
    bad: list[tuple[Any, str]] = []
    by_shape: dict[tuple[int, tuple[str, ...], str], tuple[list[Any], list[Any]]] = {}
    for record in records:
        try:
            vector, columns, field = payload_of(record)
            row = as_float_array(vector)
        except (TypeError, ValueError) as exc:
            bad.append((record, f"{type(exc).__name__}: {exc}"))
            continue
        if row.ndim != 1:
            bad.append(
                (record, f"ValueError: the record's vector must be 1-D, got shape {row.shape}")
            )
            continue
        members, rows = by_shape.setdefault((row.shape[0], columns, field), ([], []))
        members.append(record)
        rows.append(row)
    groups = [
        RecordGroup(
            members,
            np.stack(rows) if rows[0].shape[0] else np.zeros((len(rows), 0), rows[0].dtype),
            columns,
            field,
        )
        for (_, columns, field), (members, rows) in by_shape.items()
    ]
    return groups, bad


def record_count(msg: Any) -> int:
    """How many records a message stands for: a RecordBatch's (or RingRows') rows, a
    StageError's failed records, 0 for an end-of-stream marker, 1 for a per-message
    record. The one definition every record count in pipelines uses."""
    cls = type(msg)
    if cls in _ROWS:
        return len(msg)
    return 0 if cls is EndOfStream else 1


def count_records(msgs: Iterable[Any], *, errors: bool = True) -> int:
    """The sum of :func:`record_count` over ``msgs``, in one pass; ``errors=False``
    leaves StageErrors out (records sent on are counted apart from those that failed)."""
    total = 0
    for msg in msgs:
        cls = type(msg)
        if cls in _ROWS:
            if errors or cls is not StageError:
                total += len(msg)
        elif cls is not EndOfStream:
            total += 1
    return total


# Messages that carry several records.
_ROWS = frozenset({RecordBatch, StageError, RingRows})
