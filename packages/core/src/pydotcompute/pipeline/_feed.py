"""Turning a 2-D array of records into pipeline input, per-message or columnar."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from ..dataflow import Record, RecordBatch, array_to_ids, record_ids_for_rows
from ..errors import InvalidArgumentError

__all__ = ["new_run_id", "records_from_array"]


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
) -> Iterator[Any]:
    """Yield the rows of ``values`` (``(n, width)``) as pipeline input.

    Columnar: :class:`RecordBatch`\\ es of up to ``batch_size`` rows (views, no copy
    for a float32 array). Per-message: one :class:`Record` per row, its ``values`` the
    row (a 1-D array view). Row ``i``'s root id comes from
    :func:`record_ids_for_rows` (``start + i``, ``run_id``), so
    :func:`row_indices` maps results back to rows. ``keys`` (``(n,)`` integers) are
    carried along.

    Raises:
        ValueError: ``values`` is not 2-D, ``keys`` does not match, or ``batch_size``
            is below 1.
    """
    array = np.asarray(values)
    if array.ndim != 2:
        raise InvalidArgumentError(
            f"records_from_array takes a 2-D (records, width) array; got {array.shape}"
        )
    if array.dtype != np.float32:
        array = array.astype(np.float32)
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
        uuids = array_to_ids(ids)
        if chunk_keys is None:
            for row, uid in zip(chunk, uuids, strict=True):
                yield Record(values=row, message_id=uid)
        else:
            for row, uid, key in zip(chunk, uuids, chunk_keys.tolist(), strict=True):
                yield Record(values=row, key=key, message_id=uid)
