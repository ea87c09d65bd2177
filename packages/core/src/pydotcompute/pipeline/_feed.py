"""Turning a 2-D array of records into pipeline input, per-message or columnar."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from ..dataflow import Record, RecordBatch, record_ids_for_rows
from ..errors import InvalidArgumentError, PipelineValidationError
from ..runtime import unchecked_builder, uuids_from_ints
from ._dtype import input_dtype, parse_dtype, rows_that_fit

__all__ = ["new_run_id", "records_from_array"]

# One Record per row, from a row view and the id just drawn for it: nothing to check.
_record_with_id = unchecked_builder(Record, "values", "message_id")
_record_with_key_and_id = unchecked_builder(Record, "values", "key", "message_id")


def new_run_id() -> int:
    """A random 64-bit number to tell one input's record ids from another's."""
    return int.from_bytes(os.urandom(8), "big")


def records_from_array(
    values: npt.ArrayLike,
    *,
    columnar: bool = True,
    batch_size: int = 4096,
    keys: npt.ArrayLike | None = None,
    run_id: int | None = None,
    start: int = 0,
    dtype: str | None = None,
) -> Iterator[Any]:
    """Yield the rows of ``values`` (``(n, width)``) as pipeline input.

    Values are fed as ``dtype`` (float16, float32 or float64) when it is given (a
    pipeline's :attr:`~pydotcompute.Pipeline.dtype`); otherwise a float array keeps
    its dtype and integers and booleans become float64. A cast never loses a value
    silently: one that overflows ``dtype`` or an integer not exact in it raises.

    Columnar: :class:`RecordBatch`\\ es of up to ``batch_size`` rows (views, no copy
    when no cast is needed). Per-message: one :class:`Record` per row, its ``values`` the
    row (a 1-D array view). Row ``i``'s root id comes from
    :func:`record_ids_for_rows` (``start + i``, ``run_id``), so
    :func:`row_indices` maps results back to rows. ``keys`` (``(n,)`` integers) are
    carried along.

    Raises:
        ValueError: ``values`` is not 2-D or not numeric, ``keys`` does not match,
            ``batch_size`` is below 1, ``dtype`` is not one of the three, or a value
            does not fit it (the row and column are named).
    """
    array = np.asarray(values)
    if array.ndim != 2:
        raise InvalidArgumentError(
            f"records_from_array takes a 2-D (records, width) array; got {array.shape}"
        )
    array = _as_input_dtype(array, dtype)
    if type(batch_size) is not int or batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be a positive int, got {batch_size!r}")
    n = array.shape[0]
    key_array = None if keys is None else np.asarray(keys, dtype=np.int64)
    if key_array is not None and key_array.shape != (n,):
        raise InvalidArgumentError(f"keys must have shape ({n},); got {key_array.shape}")
    rid = new_run_id() if run_id is None else run_id
    for lo in range(0, n, batch_size):
        hi = min(lo + batch_size, n)
        ids = record_ids_for_rows(start + lo, hi - lo, rid)
        chunk = array[lo:hi]
        chunk_keys = None if key_array is None else key_array[lo:hi]
        if columnar:
            yield RecordBatch(values=chunk, record_ids=ids, keys=chunk_keys)
            continue
        # array_to_ids(ids), for ids that share their high half.
        uuids = uuids_from_ints(ids[:, 1].tolist(), high=int(ids[0, 0]) << 64) if len(ids) else []
        if chunk_keys is None:
            yield from map(_record_with_id, chunk, uuids)
        else:
            yield from map(_record_with_key_and_id, chunk, chunk_keys.tolist(), uuids)


def _as_input_dtype(array: npt.NDArray[Any], dtype: str | None) -> npt.NDArray[Any]:
    """``array`` in the dtype it is fed as (see :func:`records_from_array`)."""
    if array.dtype.kind not in "biuf":
        raise InvalidArgumentError(
            f"records_from_array takes numeric values; got an array of {array.dtype}"
        )
    try:
        target = input_dtype(None if dtype is None else parse_dtype(dtype), array.dtype)
    except PipelineValidationError as exc:
        raise InvalidArgumentError(str(exc)) from None
    if array.dtype == target:
        return array
    _, problems = rows_that_fit(array, target)
    if problems:
        row, column, problem = problems[0]
        raise InvalidArgumentError(
            f"row {row}, column {column}: {problem}; "
            f"{len(problems)} row(s) do not fit (read them as another dtype, or drop them)"
        )
    return array.astype(target)
