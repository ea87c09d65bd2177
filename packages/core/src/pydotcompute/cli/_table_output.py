"""Parquet and Arrow IPC output, written as results come.

Results are written in completion order, a row group (Parquet) or record batch (Arrow)
per :data:`GROUP_ROWS` results: an ``id`` column, the result's values (one column per
statistic, or one fixed-size-list column for a vector), ``key`` and ``count`` where
results carry them, and ``error``/``stage`` (null for a result, set for a record that
failed in a stage). Closing writes the footer, so a run stopped by a bad input piece or
a signal leaves a readable file of what was written.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ..dataflow import RecordBatch, StageError, as_float_array, ids_to_array, payload_of, root_id
from ..errors import InputFileError
from ._arrow import TABLE_FORMATS, load_pyarrow, said
from ._files import format_of

__all__ = ["GROUP_ROWS", "TableWriter"]

#: Results gathered into one row group / record batch before it is written, at most.
GROUP_ROWS: Final = 65_536
_GROUP_BYTES: Final = 16 << 20
#: Columns every output table may hold: no result column may take their names.
_OUTPUT_FIXED: Final = ("id", "key", "count", "error", "stage")


@dataclasses.dataclass
class _Part:
    """Results waiting to be written: ids, and values or an error."""

    names: list[Any]
    values: npt.NDArray[Any] | None = None
    shape: tuple[Any, ...] = ()  # (columns, field, width, dtype, has keys, has counts)
    keys: npt.NDArray[np.int64] | None = None
    counts: npt.NDArray[np.int64] | None = None
    error: str | None = None
    stage: str | None = None


class TableWriter:
    """Writes results to a Parquet or Arrow IPC (file or stream) output as they come.

    The file is created (emptied) at once, so an unwritable path fails before the run.
    Results gather into groups of ``group_rows`` (or 64 MiB) and each group is one row
    group or record batch. The schema is fixed by the first result: results of another
    shape (other columns, width or dtype) are refused with an error that names both, as
    one table cannot hold them. ``label(ids)`` names records (see
    :func:`~pydotcompute.cli.result_rows`).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fmt: str | None = None,
        *,
        label: Callable[[Any], list[Any]],
        group_rows: int = GROUP_ROWS,
    ) -> None:
        self.path = os.fspath(path)
        #: parquet, arrow (IPC file) or arrows (IPC stream): ``fmt``, else the extension's
        self.format = format_of(self.path, fmt, TABLE_FORMATS)
        self._pa = load_pyarrow(self.path, self.format)
        self._label = label
        self._group_rows = group_rows
        self.rows = 0  #: rows written to the file so far
        self._parts: list[_Part] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._shape: tuple[Any, ...] | None = None
        self._schema: Any = None
        self._id_type: Any = None
        self._writer: Any = None
        self._sink: Any = self._pa.OSFile(self.path, "wb")

    def write(self, msg: Any) -> None:
        """Take one result message (any number of records).

        Raises:
            InputFileError: a result of another shape than the first.
            OSError: the file cannot be written.
        """
        names = self._label(msg.record_ids) if type(msg) in (RecordBatch, StageError) else None
        if type(msg) is StageError:
            assert names is not None
            part = _Part(names, error=msg.error, stage=msg.stage)
        elif type(msg) is RecordBatch:
            assert names is not None
            values = as_float_array(msg.values).reshape(len(msg), -1)
            part = _Part(
                names,
                values,
                _shape_of(msg.columns, msg.field, values, msg.keys, msg.counts),
                msg.keys,
                msg.counts,
            )
        else:
            vector, columns, field = payload_of(msg)
            values = as_float_array(vector).reshape(1, -1)
            key = getattr(msg, "key", None)
            keys = None if key is None else np.array([key], dtype=np.int64)
            (name,) = self._label(ids_to_array([root_id(msg)]))
            part = _Part([name], values, _shape_of(columns, field, values, keys, None), keys)
        if part.values is not None:
            self._check_shape(part.shape)
        if self._pending_rows + len(part.names) > self._group_rows and self._shape is not None:
            self._flush()  # groups of at most group_rows (a bigger part is one group)
        self._parts.append(part)
        self._pending_rows += len(part.names)
        self._pending_bytes += 0 if part.values is None else part.values.nbytes
        if self._shape is not None and (
            self._pending_rows >= self._group_rows or self._pending_bytes >= _GROUP_BYTES
        ):
            self._flush()

    def _check_shape(self, shape: tuple[Any, ...]) -> None:
        if self._shape is None:
            clash = (
                set(shape[0]) & set(_OUTPUT_FIXED)
                if shape[0]
                else ({shape[1]} & set(_OUTPUT_FIXED))
            )
            if clash:
                raise InputFileError(
                    self.path,
                    f"a result column is named {sorted(clash)[0]!r}, as a column this "
                    "table holds for every record is: write .jsonl instead",
                )
            self._shape = shape
        elif (
            shape[:4] != self._shape[:4]
            or (shape[4] and not self._shape[4])
            or (shape[5] and not self._shape[5])
        ):
            raise InputFileError(
                self.path,
                f"results of two shapes ({_describe(self._shape)} and {_describe(shape)}) "
                "cannot share one table: write .jsonl instead",
            )

    def _flush(self) -> None:
        parts, self._parts = self._parts, []
        self._pending_rows = self._pending_bytes = 0
        if not parts:
            return
        try:
            batch = self._batch(parts)
        except (self._pa.ArrowInvalid, self._pa.ArrowNotImplementedError) as exc:
            raise InputFileError(
                self.path, f"results that do not fit the table's columns: {said(exc)}"
            ) from None
        if self._writer is None:
            self._open_writer(batch.schema)
        self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def _open_writer(self, schema: Any) -> None:
        pa = self._pa
        if self.format == "parquet":
            parquet = importlib.import_module("pyarrow.parquet")
            self._writer = parquet.ParquetWriter(self._sink, schema, write_page_checksum=True)
        elif self.format == "arrow":
            self._writer = pa.ipc.new_file(self._sink, schema)
        else:
            self._writer = pa.ipc.new_stream(self._sink, schema)

    def _batch(self, parts: list[_Part]) -> Any:
        """One Arrow record batch of ``parts``, in the table's schema."""
        pa = self._pa
        names = [name for part in parts for name in part.names]
        ids = _id_array(pa, names, self._id_type)
        self._id_type = ids.type
        columns: dict[str, Any] = {"id": ids}
        shape = self._shape
        n = len(names)
        if shape is not None:
            cols, field, width, dtype, has_keys, has_counts = shape
            values = np.empty((n, width), dtype=dtype)  # one copy of each part's values
            valid = np.zeros(n, dtype=np.bool_)
            keys = np.zeros(n, dtype=np.int64)
            key_valid = np.zeros(n, dtype=np.bool_)
            counts = np.zeros(n, dtype=np.int64)
            count_valid = np.zeros(n, dtype=np.bool_)
            at = 0
            for part in parts:
                size = len(part.names)
                if part.values is not None:
                    values[at : at + size] = part.values
                    valid[at : at + size] = True
                    if part.keys is not None:
                        keys[at : at + size] = part.keys
                        key_valid[at : at + size] = True
                    if part.counts is not None:
                        counts[at : at + size] = part.counts
                        count_valid[at : at + size] = True
                else:  # an error's rows: null, and zeros under the mask
                    values[at : at + size] = 0
                at += size
            missing = None if valid.all() else ~valid
            if cols:
                for j, name in enumerate(cols):
                    columns[name] = pa.array(values[:, j], mask=missing)
            else:
                flat = pa.array(values.reshape(-1))
                mask = None if missing is None else pa.array(missing)
                vectors = pa.FixedSizeListArray.from_arrays(flat, width, mask=mask)
                columns[field] = vectors
            if has_keys:
                columns["key"] = pa.array(keys, mask=~key_valid)
            if has_counts:
                columns["count"] = pa.array(counts, mask=~count_valid)
        errors = [part.error for part in parts for _ in part.names]
        stages = [part.stage for part in parts for _ in part.names]
        columns["error"] = pa.array(errors, type=pa.string())
        columns["stage"] = pa.array(stages, type=pa.string())
        batch = pa.RecordBatch.from_pydict(columns)
        if self._schema is None:
            self._schema = batch.schema
        elif batch.schema != self._schema:  # raises where a column's type differs
            batch = pa.RecordBatch.from_arrays(batch.columns, schema=self._schema)
        return batch

    def close(self) -> None:
        """Write what is waiting and the footer. Idempotent.

        Raises:
            InputFileError, OSError: as :meth:`write`.
        """
        if self._sink is None:
            return
        try:
            try:
                self._flush()  # only errors came: the table has no value columns
            finally:  # the footer, so that what was written stays readable
                if self._writer is None:  # no result at all: an empty table
                    pa = self._pa
                    schema = pa.schema(
                        [("id", pa.int64()), ("error", pa.string()), ("stage", pa.string())]
                    )
                    self._open_writer(schema)
                self._writer.close()
        finally:
            sink, self._sink = self._sink, None
            sink.close()


def _shape_of(
    columns: Sequence[str], field: str, values: npt.NDArray[Any], keys: Any, counts: Any
) -> tuple[Any, ...]:
    return (
        tuple(columns),
        field,
        values.shape[1],
        values.dtype,
        keys is not None,
        counts is not None,
    )


def _describe(shape: tuple[Any, ...]) -> str:
    columns, field, width, dtype = shape[:4]
    what = f"columns {', '.join(columns)}" if columns else f"{field!r} of {width} values"
    return f"{what}, {dtype}"


def _id_array(pa: ModuleType, names: list[Any], id_type: Any) -> Any:
    """The ids as one Arrow array: integers stay integers; strings, or a mix, are
    strings; later groups keep the first group's type where they can."""
    kinds = set(map(type, names))
    if kinds <= {int}:
        array = pa.array(names, type=pa.int64())
    else:
        array = pa.array([str(n) for n in names], type=pa.string())
    if id_type is not None and array.type != id_type:
        return array.cast(id_type)
    return array
