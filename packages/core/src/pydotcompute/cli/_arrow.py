"""Parquet and Arrow IPC input and output, streamed.

Input is read a piece at a time: a Parquet file row group by row group (each in pieces
of at most ``piece_rows`` rows), an Arrow IPC file or stream record batch by record
batch, so what the reader holds is one piece, never the file. Values come either from
one list column (``fixed_size_list``, ``list`` or ``large_list`` of numbers) or from
one numeric column per value; a column named ``id`` (strings or integers) names each
record and a column named ``key`` (integers) keys it, as in CSV. A fixed-size list of
floats without nulls reaches NumPy without a copy.

Output is written as results arrive, in completion order, a row group (Parquet) or
record batch (Arrow) per ``group_rows`` results: an ``id`` column, the result's values
(one column per statistic, or one fixed-size-list column for a vector), ``key`` and
``count`` where results carry them, and ``error``/``stage`` (null for a result, set for
a record that failed in a stage). Closing writes the footer, so a run stopped by a bad
input piece or a signal leaves a readable file of what was written.

pyarrow is imported only when such a file is used; without it the error names the
``arrow`` extra.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ..dataflow import (
    Record,
    RecordBatch,
    StageError,
    array_to_ids,
    as_float_array,
    ids_to_array,
    payload_of,
    record_ids_for_rows,
    root_id,
)
from ..errors import InputFileError
from ..pipeline import input_dtype, parse_dtype, records_from_array, rows_that_fit
from ._files import InputData, InputRecordError, format_of

__all__ = [
    "TABLE_FORMATS",
    "TableInput",
    "TablePiece",
    "TableWriter",
    "load_pyarrow",
    "read_table",
]

#: The formats this module reads and writes: Parquet, Arrow IPC file, Arrow IPC stream.
TABLE_FORMATS: Final = ("parquet", "arrow", "arrows")
_NAMES: Final = {"parquet": "Parquet", "arrow": "Arrow IPC", "arrows": "Arrow IPC stream"}
_EXTRA: Final = "pip install 'pydotcompute[arrow]'"
_IPC_FILE_MAGIC: Final = b"ARROW1"
#: Bytes of values per piece read from a Parquet row group (whole pipeline batches, at
#: least one): what the reader holds is a few of these, whatever the row group's size.
PIECE_BYTES: Final = 8 << 20
#: Results gathered into one row group / record batch before it is written, at most.
GROUP_ROWS: Final = 65_536
_GROUP_BYTES: Final = 16 << 20
#: Parquet is read through a buffer of this size, not a column chunk at a time.
_READ_BUFFER: Final = 1 << 20
_OUTPUT_FIXED: Final = ("id", "key", "count", "error", "stage")
#: Text columns an input may have that are not values: a results table's own.
_SKIPPED: Final = frozenset({"error", "stage"})


def load_pyarrow(path: str, fmt: str) -> ModuleType:
    """pyarrow (and ``pyarrow.parquet`` for Parquet), imported now.

    Raises:
        InputFileError: pyarrow is not installed, naming the extra that brings it.
    """
    try:
        pa = importlib.import_module("pyarrow")
        importlib.import_module("pyarrow.parquet" if fmt == "parquet" else "pyarrow.ipc")
    except ImportError as exc:
        raise InputFileError(
            path,
            f"{_NAMES[fmt]} files need pyarrow, which is not installed ({exc}): {_EXTRA}",
        ) from None
    return pa


@dataclasses.dataclass(frozen=True)
class TablePiece:
    """Good records of one piece of a file, numbered among the file's good records.

    ``values`` is ``(n, width)`` (read-only when it is Arrow's own memory), or, for
    lists of any length (``one_width=False``), one 1-D array per record. ``keys``:
    ``(n,)`` int64 when every record of the piece has a key, else None.
    """

    start: int  #: good-record number of the first record
    values: npt.NDArray[np.floating[Any]] | list[npt.NDArray[np.floating[Any]]]
    keys: npt.NDArray[np.int64] | None

    def __len__(self) -> int:
        return len(self.values)


@dataclasses.dataclass(frozen=True)
class _Layout:
    id_column: str | None
    key_column: str | None
    value_columns: tuple[str, ...]  # one list column, or numeric columns
    is_list: bool
    source_dtype: np.dtype[Any]
    row_bytes: int | None  # a record's values in memory, where the schema says

    @property
    def columns(self) -> list[str]:
        named = [self.id_column, self.key_column]
        return [c for c in named if c is not None] + list(self.value_columns)


class TableInput:
    """A Parquet or Arrow IPC file's records, read a piece at a time (``fmt``: parquet,
    arrow or arrows; None: told by the extension).

    ``dtype`` (a pipeline's dtype: float16, float32 or float64) is what values are read
    as; None keeps a float column's own dtype (integers and booleans become float64). A
    value that dtype cannot hold, a null list, a null key where ``require_key``, or (with
    ``one_width``) a list of another length than the first good one makes its record a
    bad record (:attr:`errors`; ``line`` is its 1-based row in the file); null values
    are NaN.

    Raises:
        InputFileError: missing file, not readable as its format, pyarrow missing, no
            records, or columns that hold no values (checked before anything is read).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fmt: str | None = None,
        *,
        dtype: str | None = None,
        require_key: bool = False,
        one_width: bool = True,
        piece_rows: int | None = None,
    ) -> None:
        self.path = os.fspath(path)
        #: parquet, arrow or arrows: ``fmt``, else from the extension
        self.format = format_of(self.path, fmt, TABLE_FORMATS)
        self.require_key = require_key
        self.one_width = one_width
        self.errors: list[InputRecordError] = []
        #: Why reading stopped early (set by :meth:`messages`), or None.
        self.failure: InputFileError | None = None
        self.good = 0  #: good records read so far
        self._pa = load_pyarrow(self.path, self.format)
        if not os.path.exists(self.path):
            raise InputFileError(self.path, "no such file")
        if not Path(self.path).is_file():
            raise InputFileError(self.path, "is not a regular file (a directory?)")
        self._given = None if dtype is None else parse_dtype(dtype)
        self._reading = (0, 0, 0)  # (row group or batch, how many, its first row)
        schema, self.count, self._unit = self._open()
        if self.count == 0:
            raise InputFileError(self.path, "the file holds no records")
        self.layout = _layout(self.path, self._pa, schema)
        if require_key and self.layout.key_column is None:
            raise InputFileError(
                self.path, "has no 'key' column, and this pipeline routes records by key"
            )
        self.dtype = input_dtype(self._given, self.layout.source_dtype)
        #: Rows per piece read from a Parquet row group (None: about PIECE_BYTES).
        self.piece_rows = piece_rows
        self._width: int | None = None
        self._bad: list[int] = []  # file rows of bad records, ascending
        self._bad_shifted: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._id_chunks: list[Any] = []  # Arrow arrays of good records' ids
        self._id_starts: list[int] = []

    # -- opening and reading -----------------------------------------------------------

    def _open(self) -> tuple[Any, int, str]:
        """The schema, the number of records, and what a piece of the file is called."""
        pa = self._pa
        try:
            if self.format == "parquet":
                meta = _parquet_file(self.path).metadata
                return meta.schema.to_arrow_schema(), int(meta.num_rows), "row group"
            with _IpcBatches(pa, self.path) as (schema, _, _):
                pass
        except (OSError, pa.ArrowException, ValueError) as exc:
            raise InputFileError(
                self.path, f"not a readable {_NAMES[self.format]} file: {_said(exc)}"
            ) from None
        # Counting an IPC file's records reads it once, a batch at a time: its footer
        # says where the batches are, not how many records each holds. A broken batch
        # is found here, before the run.
        count = 0
        batches = self._batches(None)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except (OSError, pa.ArrowException, ValueError) as exc:
                raise self._broken(exc, "record batch") from None
            count += batch.num_rows
        return schema, count, "record batch"

    def _batches(self, columns: list[str] | None) -> Iterator[Any]:
        """The file's Arrow record batches (of ``columns``), in order; :attr:`_reading`
        says which row group or record batch is being read, for an error."""
        if self.format == "parquet":
            parquet = _parquet_file(self.path)
            meta = parquet.metadata
            first = 0
            for group in range(meta.num_row_groups):
                self._reading = (group, meta.num_row_groups, first)
                yield from parquet.iter_batches(
                    batch_size=self._piece_rows(meta), row_groups=[group], columns=columns
                )
                first += meta.row_group(group).num_rows
            return
        with _IpcBatches(self._pa, self.path) as (_, total, read):
            number = first = 0
            while True:
                self._reading = (number, total, first)
                batch = read(number)
                if batch is None:
                    return
                yield batch if columns is None else batch.select(columns)
                number += 1
                first += batch.num_rows

    def _piece_rows(self, meta: Any, multiple: int = 1) -> int:
        if self.piece_rows is not None:
            return self.piece_rows
        per_row = self.layout.row_bytes
        if per_row is None:  # lists of any length: their mean size, as Parquet says
            size = sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))
            per_row = size // max(1, meta.num_rows)
        return max(1, PIECE_BYTES // max(1, per_row) // multiple) * multiple

    def _broken(self, exc: BaseException, unit: str) -> InputFileError:
        number, total, first = self._reading
        of = f" of {total}" if total else ""
        return InputFileError(
            self.path,
            f"{unit} {number}{of} (counting from 0; its first record is row {first + 1:,} "
            f"of the file) cannot be read: {_said(exc)}",
        )

    def pieces(self) -> Iterator[TablePiece]:
        """The good records, a piece at a time (bad ones go to :attr:`errors`).

        Raises:
            InputFileError: a piece cannot be read (a corrupt or truncated file),
                naming the row group or record batch and its first record.
        """
        pa = self._pa
        row = 0
        batches = self._batches(self.layout.columns)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except (OSError, pa.ArrowException, ValueError) as exc:
                raise self._broken(exc, self._unit) from None
            piece = self._convert(batch, row)
            row += batch.num_rows
            if piece is not None:
                yield piece

    def messages(
        self, *, columnar: bool, batch_size: int, run_id: int, dtype: str | None
    ) -> Iterator[Any]:
        """Pipeline input for every good record (RecordBatches, or one Record each);
        a piece that cannot be read ends the input and is kept in :attr:`failure`."""
        if self.piece_rows is None and self.format == "parquet":
            # Pieces of whole batches: no short batch at each piece's end.
            meta = _parquet_file(self.path).metadata
            self.piece_rows = self._piece_rows(meta, batch_size if columnar else 1)
        try:
            for piece in self.pieces():
                if isinstance(piece.values, list):
                    yield from _ragged(piece, run_id)
                    continue
                yield from records_from_array(
                    piece.values,
                    columnar=columnar,
                    batch_size=batch_size,
                    keys=piece.keys,
                    run_id=run_id,
                    start=piece.start,
                    dtype=dtype,
                )
        except InputFileError as exc:
            self.failure = exc

    # -- one piece ---------------------------------------------------------------------

    def _convert(self, batch: Any, row: int) -> TablePiece | None:
        """The good records of ``batch`` (its first record is file row ``row``)."""
        layout = self.layout
        n = batch.num_rows
        good = np.ones(n, dtype=np.bool_)
        problems: list[tuple[int, str, str]] = []  # (row in batch, field, problem)
        keys: npt.NDArray[np.int64] | None = None
        if layout.key_column is not None:
            key_array = batch.column(layout.key_column)
            if key_array.null_count == 0:
                keys = key_array.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
            elif self.require_key:
                for i in np.flatnonzero(_nulls(key_array)).tolist():
                    good[i] = False
                    problems.append(
                        (i, layout.key_column, "missing; this pipeline routes records by key")
                    )
        values: Any
        if layout.is_list:
            values = self._list_values(batch.column(layout.value_columns[0]), good, problems)
        else:
            values = self._column_values(batch, layout.value_columns)
        if isinstance(values, np.ndarray):
            fits, lost = rows_that_fit(values, self.dtype)
            names = layout.value_columns
            for i, column, problem in lost:
                if good[i]:
                    field = f"{names[0]}[{column}]" if layout.is_list else names[column]
                    problems.append((i, field, problem))
            good &= fits
        else:  # lists of any length: each record on its own
            for i, vector in enumerate(values):
                if good[i] and vector is not None:
                    _, lost = rows_that_fit(vector.reshape(1, -1), self.dtype)
                    if lost:
                        good[i] = False
                        problems.append((i, f"{layout.value_columns[0]}[{lost[0][1]}]", lost[0][2]))
        for i, field, problem in sorted(problems):
            self.errors.append(InputRecordError(self.path, row + i + 1, field, problem))
        if not good.all():
            self._note_bad(row + np.flatnonzero(~good))
        kept = int(good.sum())
        if kept == 0:
            return None
        start = self.good
        self.good += kept
        if layout.id_column is not None:
            ids = batch.column(layout.id_column)
            self._id_chunks.append(ids if kept == n else ids.filter(self._pa.array(good)))
            self._id_starts.append(start)
        if keys is not None and kept < n:
            keys = keys[good]
        elif keys is None and layout.key_column is not None and self.require_key:
            key_array = batch.column(layout.key_column)
            keys = np.asarray(key_array.filter(self._pa.array(good)).to_numpy(), dtype=np.int64)
        if isinstance(values, np.ndarray):
            kept_values = values if kept == n else values[good]
            cast = kept_values.astype(self.dtype, copy=False)  # a view when no cast is needed
            return TablePiece(start, cast, keys)
        rows = [
            np.asarray(v, dtype=self.dtype)
            for v, ok in zip(values, good.tolist(), strict=True)
            if ok
        ]
        return TablePiece(start, rows, keys)

    def _list_values(self, array: Any, good: npt.NDArray[np.bool_], problems: list[Any]) -> Any:
        """A list column's values: ``(n, width)`` (a view of Arrow's memory where it
        can be), or one 1-D array per record for lists of any length."""
        pa = self._pa
        name = self.layout.value_columns[0]
        n = len(array)
        if array.null_count:
            for i in np.flatnonzero(_nulls(array)).tolist():
                good[i] = False
                problems.append((i, name, "null; a record needs a list of values"))
        if pa.types.is_fixed_size_list(array.type):
            width = array.type.list_size
            child = array.values.slice(array.offset * width, n * width)
            flat = _numbers(child)
            if self._width is None:
                self._width = width
            return flat.reshape(n, width)
        lengths = array.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
        offsets = array.offsets.to_numpy(zero_copy_only=False)
        flat = _numbers(array.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0])))
        starts = offsets[:-1] - offsets[0]
        if not self.one_width:
            out: list[Any] = []
            for i in range(n):
                if good[i] and lengths[i] == 0:
                    good[i] = False
                    problems.append((i, name, "is empty; a record needs at least one value"))
                out.append(flat[starts[i] : starts[i] + lengths[i]] if good[i] else None)
            return out
        for i in np.flatnonzero(good & (lengths == 0)).tolist():
            good[i] = False
            problems.append((i, name, "is empty; a record needs at least one value"))
        if self._width is None and good.any():
            self._width = int(lengths[np.flatnonzero(good)[0]])
        width = self._width or 1
        for i in np.flatnonzero(good & (lengths != width)).tolist():
            good[i] = False
            problems.append(
                (
                    i,
                    name,
                    f"has {lengths[i]} values, but the records before it have {width}; "
                    "columnar mode needs one width (--mode per-message takes any length)",
                )
            )
        out_array = np.zeros((n, width), dtype=flat.dtype)  # bad rows' stay unread
        rows = np.flatnonzero(good)
        if len(rows):
            take = starts[rows, None] + np.arange(width)
            out_array[rows] = flat[take]
        return out_array

    def _column_values(self, batch: Any, names: Sequence[str]) -> npt.NDArray[Any]:
        """One numeric column per value, stacked into rows (a copy: Arrow keeps each
        column whole, a record's values are a row)."""
        dtype = self.layout.source_dtype
        if dtype.kind != "f" and any(batch.column(name).null_count for name in names):
            dtype = np.dtype(np.float64)  # a null is NaN, which integers have not
        out = np.empty((batch.num_rows, len(names)), dtype=dtype)
        for j, name in enumerate(names):
            out[:, j] = _numbers(batch.column(name))
        return out

    # -- names -------------------------------------------------------------------------

    def _note_bad(self, rows: npt.NDArray[np.int64]) -> None:
        self._bad.extend(rows.tolist())
        bad = np.asarray(self._bad, dtype=np.int64)
        # Good records before the i-th bad one: position(g) = g + how many of these <= g.
        self._bad_shifted = bad - np.arange(len(bad), dtype=np.int64)

    def positions(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The file rows (0-based) of good records ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(self._bad_shifted):
            return rows
        shift = np.searchsorted(self._bad_shifted, rows, side="right")
        return rows + shift.astype(np.int64)

    def label(self, row: int) -> Any:
        """How output names good record ``row``: its own id, else its file row."""
        return self.labels(np.array([row], dtype=np.int64))[0]

    def labels(self, rows: npt.NDArray[np.int64]) -> list[Any]:
        """:meth:`label` of each of ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        where: list[Any] = self.positions(rows).tolist()
        if not self._id_chunks or not len(rows):
            return where
        own = self.own_ids(rows)
        return [w if o is None else o for o, w in zip(own, where, strict=True)]

    def own_ids(self, rows: npt.NDArray[np.int64]) -> list[Any]:
        """The ``id`` column's value of good records ``rows`` (None where null)."""
        if not self._id_chunks:
            return [None] * len(rows)
        starts = np.asarray(self._id_starts, dtype=np.int64)
        chunk = np.searchsorted(starts, rows, side="right") - 1
        out: list[Any] = [None] * len(rows)
        for c in np.unique(chunk).tolist():
            picked = np.flatnonzero(chunk == c)
            local = rows[picked] - starts[c]
            ids = self._id_chunks[c].take(self._pa.array(local)).to_pylist()
            for i, value in zip(picked.tolist(), ids, strict=True):
                out[i] = value
        return out


class _IpcBatches:
    """An Arrow IPC file or stream (told apart by its first bytes), opened to be read a
    batch at a time: ``with`` gives ``(schema, batches or 0 for a stream, read)``, where
    ``read(i)`` is batch ``i`` (asked for in order), or None past the last."""

    def __init__(self, pa: ModuleType, path: str) -> None:
        self.pa = pa
        self.path = path
        self.source: Any = None

    def __enter__(self) -> tuple[Any, int, Callable[[int], Any]]:
        pa = self.pa
        with open(self.path, "rb") as handle:
            is_file = handle.read(len(_IPC_FILE_MAGIC)) == _IPC_FILE_MAGIC
        self.source = pa.OSFile(self.path, "rb")  # read, not mapped: no pages pile up
        try:
            if is_file:
                reader = pa.ipc.open_file(self.source)
                total = reader.num_record_batches
                return (
                    reader.schema,
                    total,
                    lambda i: reader.get_batch(i) if i < total else None,
                )
            stream = pa.ipc.open_stream(self.source)

            def read(i: int) -> Any:
                try:
                    return stream.read_next_batch()
                except StopIteration:
                    return None

            return stream.schema, 0, read
        except BaseException:
            self.source.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.source.close()


def _parquet_file(path: str) -> Any:
    parquet = importlib.import_module("pyarrow.parquet")
    return parquet.ParquetFile(
        path,
        buffer_size=_READ_BUFFER,
        pre_buffer=False,
        page_checksum_verification=True,
    )


def _layout(path: str, pa: ModuleType, schema: Any) -> _Layout:
    """Which columns are the id, the key and the values (see the module docstring).

    Raises:
        InputFileError: the columns hold no values, or values of a kind not numbers.
    """
    types = pa.types
    id_column = key_column = None
    rest: list[Any] = []
    for field in schema:
        lowered = field.name.lower()
        if lowered == "id" and id_column is None:
            if not (
                types.is_integer(field.type)
                or types.is_string(field.type)
                or types.is_large_string(field.type)
            ):
                raise InputFileError(
                    path, f"column {field.name!r} holds {field.type}; ids are strings or integers"
                )
            id_column = field.name
        elif lowered in _SKIPPED and _is_text(types, field.type):
            continue  # a results table's own columns: it can be read back as input
        elif lowered == "key" and key_column is None:
            if not types.is_integer(field.type):
                raise InputFileError(
                    path, f"column {field.name!r} holds {field.type}; keys are integers"
                )
            key_column = field.name
        else:
            rest.append(field)
    lists = [f for f in rest if _is_list(types, f.type)]
    if lists:
        if len(rest) > 1:
            names = ", ".join(repr(f.name) for f in rest)
            raise InputFileError(
                path,
                f"has the columns {names}: the values are one list column or one numeric "
                "column per value (besides 'id' and 'key'), not both, nor two lists",
            )
        field = lists[0]
        inner = field.type.value_type
        if not _is_number(types, inner):
            raise InputFileError(
                path, f"column {field.name!r} holds {field.type}; the values must be numbers"
            )
        if types.is_fixed_size_list(field.type) and field.type.list_size == 0:
            raise InputFileError(
                path, f"column {field.name!r} holds lists of 0 values; a record needs one"
            )
        dtype = _numpy_dtype(inner)
        fixed = types.is_fixed_size_list(field.type)
        size = field.type.list_size * dtype.itemsize if fixed else None
        return _Layout(id_column, key_column, (field.name,), True, dtype, size)
    if not rest:
        raise InputFileError(
            path, "has no value column (only 'id' and 'key'); a record needs values"
        )
    for field in rest:
        if not _is_number(types, field.type):
            raise InputFileError(
                path,
                f"column {field.name!r} holds {field.type}; the values are one list column "
                "or numeric columns (besides 'id' and 'key')",
            )
    dtype = np.result_type(*(_numpy_dtype(f.type) for f in rest))
    values = tuple(f.name for f in rest)
    return _Layout(id_column, key_column, values, False, dtype, len(rest) * dtype.itemsize)


def _is_text(types: Any, arrow_type: Any) -> bool:
    return bool(types.is_string(arrow_type) or types.is_large_string(arrow_type))


def _is_list(types: Any, arrow_type: Any) -> bool:
    return bool(
        types.is_fixed_size_list(arrow_type)
        or types.is_list(arrow_type)
        or types.is_large_list(arrow_type)
    )


def _is_number(types: Any, arrow_type: Any) -> bool:
    return bool(
        types.is_floating(arrow_type)
        or types.is_integer(arrow_type)
        or types.is_boolean(arrow_type)
    )


def _numpy_dtype(arrow_type: Any) -> np.dtype[Any]:
    """The NumPy dtype values of ``arrow_type`` are read as (integers keep theirs, so
    their exactness in the pipeline's dtype is judged on the number written)."""
    dtype: np.dtype[Any] = np.dtype(arrow_type.to_pandas_dtype())
    return dtype


def _numbers(array: Any) -> npt.NDArray[Any]:
    """A numeric Arrow array as NumPy: no copy when it has no nulls and a plain dtype;
    nulls become NaN (integers with nulls become float64)."""
    if array.null_count == 0:
        return np.asarray(array.to_numpy(zero_copy_only=False))
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)


def _nulls(array: Any) -> npt.NDArray[np.bool_]:
    return np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=np.bool_)


def _said(exc: BaseException) -> str:
    """An Arrow error's message on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _ragged(piece: TablePiece, run_id: int) -> Iterator[Record]:
    uuids = array_to_ids(record_ids_for_rows(piece.start, len(piece), run_id))
    keys = [None] * len(piece) if piece.keys is None else piece.keys.tolist()
    for row, uid, key in zip(piece.values, uuids, keys, strict=True):
        yield Record(values=row, key=key, message_id=uid)


def read_table(
    path: str | os.PathLike[str],
    fmt: str,
    *,
    require_key: bool = False,
    one_width: bool = True,
    dtype: str | None = None,
) -> InputData:
    """A Parquet or Arrow file's good records, all in memory (see
    :func:`~pydotcompute.cli.read_input`; :class:`TableInput` streams them).

    Raises:
        InputFileError: as :class:`TableInput`, a piece cannot be read, or the file
            holds no good record.
    """
    table = TableInput(path, fmt, dtype=dtype, require_key=require_key, one_width=one_width)
    pieces = list(table.pieces())
    if not pieces:
        raise InputFileError(table.path, f"no good record; the first problem: {table.errors[0]}")
    keyed = all(p.keys is not None for p in pieces)
    keys = np.concatenate([p.keys for p in pieces if p.keys is not None]) if keyed else None
    every = np.arange(table.good, dtype=np.int64)
    index = table.positions(every)
    own = [None] * table.good if table.layout.id_column is None else table.own_ids(every)
    if isinstance(pieces[0].values, list):
        ragged = [row for p in pieces for row in p.values]
        return InputData(table.path, None, index, own, keys, table.errors, ragged)
    values = np.concatenate([np.asarray(p.values) for p in pieces])
    return InputData(table.path, values, index, own, keys, table.errors)


# -- output ----------------------------------------------------------------------------


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
                self.path, f"results that do not fit the table's columns: {_said(exc)}"
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
