"""Parquet and Arrow IPC input, read a piece at a time while the run goes.

A Parquet file is read row group by row group, each in pieces of about
:data:`PIECE_BYTES` of values; an Arrow IPC file or stream record batch by record batch.
What the reader holds is a few pieces, never the file. Values come from one list column
(``fixed_size_list``, ``list`` or ``large_list`` of numbers) or from one numeric column
per value; a column named ``id`` (strings or integers) names each record and one named
``key`` (integers) keys it, as in CSV; text columns ``error`` and ``stage`` (a results
table's own) are skipped. A fixed-size list of floats without nulls reaches NumPy
without a copy.
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

from ..dataflow import Record, array_to_ids, record_ids_for_rows
from ..errors import InputFileError
from ..pipeline import input_dtype, parse_dtype, records_from_array, rows_that_fit
from ._arrow import NAMES, TABLE_FORMATS, load_pyarrow, said
from ._files import InputData, InputRecordError, format_of

__all__ = ["PIECE_BYTES", "TableInput", "TablePiece", "read_table"]

#: Bytes of values per piece read from a Parquet row group (whole pipeline batches, at
#: least one): what the reader holds is a few of these, whatever the row group's size.
PIECE_BYTES: Final = 8 << 20
#: Parquet is read through a buffer of this size, not a column chunk at a time.
_READ_BUFFER: Final = 1 << 20
_IPC_FILE_MAGIC: Final = b"ARROW1"
#: Text columns an input may have that are not values: a results table's own.
_SKIPPED: Final = frozenset({"error", "stage"})


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
                self.path, f"not a readable {NAMES[self.format]} file: {said(exc)}"
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
            f"of the file) cannot be read: {said(exc)}",
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
            if key_array.type == self._pa.uint64():  # beyond int64: a bad record, not a wrap
                raw = key_array.fill_null(0).to_numpy(zero_copy_only=False)
                for i in np.flatnonzero(raw > np.iinfo(np.int64).max).tolist():
                    good[i] = False
                    problems.append((i, layout.key_column, f"{raw[i]} does not fit int64"))
            if key_array.null_count == 0:
                keys = np.where(good, key_array.to_numpy(zero_copy_only=False), 0).astype(np.int64)
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
