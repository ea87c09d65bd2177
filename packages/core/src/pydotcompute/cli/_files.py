"""The command-line tool's input readers and output writers.

Inputs: JSON Lines, CSV, ``.npy``; Parquet and Arrow IPC through :mod:`._table_input`
(read a row group or record batch at a time while the run goes; :func:`read_input` reads
them whole). A bad record never costs the good ones: it is
skipped and reported as an :class:`InputRecordError` naming the file, the line and the
field, and every good record is read. Values are read as the pipeline's ``dtype``
(see :func:`~pydotcompute.pipeline.input_dtype`: unset, text stays float64 and an
``.npy`` array keeps its float dtype), so a value that dtype cannot hold (it overflows,
or an integer is not exact in it, such as 16777217 in float32) makes its record a bad
record rather than a silently different number.

Outputs: JSON Lines (one line per result record, in completion order, each with its
input record's id) or ``.npy`` (the results of one sink, one row per input record in
input order where each record gives one result; otherwise in completion order). An
``.npy`` output holds the results' own float dtype: float64 statistics of float64 input
stay float64. Parquet and Arrow IPC outputs are written as results come, in completion
order, with an ``id`` column (see :class:`._table_output.TableWriter`).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Iterator, Sequence
from os import PathLike, fspath
from pathlib import Path
from typing import IO, Any, Final

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
    record_count,
    record_ids_for_rows,
    root_id,
)
from ..errors import InputFileError
from ..pipeline import PipelinePlan, cast_problem, input_dtype, parse_dtype, rows_that_fit
from ._jsonl import batch_lines, error_lines

__all__ = [
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "STREAMED_FORMATS",
    "InputData",
    "InputFileError",
    "InputRecordError",
    "ResultWriter",
    "check_output_path",
    "format_of",
    "npy_output_problem",
    "ragged_records",
    "read_input",
    "result_rows",
    "routes_by_key",
]

INPUT_FORMATS: Final = ("jsonl", "csv", "npy", "parquet", "arrow", "arrows")
OUTPUT_FORMATS: Final = ("jsonl", "npy", "parquet", "arrow", "arrows")
#: Read and written a piece at a time through pyarrow (the ``arrow`` extra).
STREAMED_FORMATS: Final = ("parquet", "arrow", "arrows")
_EXTENSIONS: Final = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".npy": "npy",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
    ".arrows": "arrows",
}
_ID_COLUMNS: Final = ("id",)
_KEY_COLUMNS: Final = ("key",)
_STANDARD_FIELDS: Final = frozenset({"message_id", "priority", "correlation_id", "deadline"})
_FLOAT64_EXACT: Final = float(2**53)
_INF_WORDS: Final = frozenset({"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"})


@dataclasses.dataclass(frozen=True)
class InputRecordError:
    """One skipped input record: where it is and what is wrong with it."""

    path: str
    line: int  #: 1-based line in the file (for .npy: the row number + 1)
    field: str  #: e.g. "values[3]", "key", "values" or a CSV column name
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: field {self.field!r}: {self.problem}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class InputData:
    """The good records of an input, and the bad ones reported.

    ``values`` is ``(n, width)`` in the dtype read (see :func:`read_input`) when every
    good record has one width, else None and ``ragged`` holds one 1-D array per good
    record (only when the
    reader was asked for records of any length). ``index`` is the 0-based position of
    each good record among all records of the file; ``ids`` the record's own ``id``
    (None where it had none); ``keys`` per-record int64 keys when every good record has
    one.
    """

    path: str
    values: npt.NDArray[np.floating[Any]] | None
    index: npt.NDArray[np.int64]
    ids: list[Any]
    keys: npt.NDArray[np.int64] | None
    errors: list[InputRecordError]
    ragged: list[npt.NDArray[np.floating[Any]]] | None = None
    #: Whether any good record has its own id (worked out on first use).
    _own_ids: bool | None = dataclasses.field(default=None, init=False, repr=False)

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def label(self, row: int) -> Any:
        """How output names good record ``row``: its own id, else its position."""
        own = self.ids[row]
        return int(self.index[row]) if own is None else own

    def labels(self, rows: npt.NDArray[np.int64]) -> list[Any]:
        """:meth:`label` of each of ``rows`` (good record numbers)."""
        if self._own_ids is None:
            self._own_ids = any(own is not None for own in self.ids)
        if not self._own_ids:
            labels: list[Any] = self.index[rows].tolist()
            return labels
        return [self.label(row) for row in rows.tolist()]


def format_of(path: str | PathLike[str], explicit: str | None, allowed: Sequence[str]) -> str:
    """The file format: ``explicit`` if given, else from the extension.

    Raises:
        InputFileError: unknown or not ``allowed``.
    """
    name = fspath(path)
    fmt = explicit or _EXTENSIONS.get(Path(name).suffix.lower())
    if fmt is None:
        raise InputFileError(
            name,
            f"cannot tell the format from the extension {Path(name).suffix!r}; "
            f"use one of {', '.join(sorted(_EXTENSIONS))} or --input-format/--output-format",
        )
    if fmt not in allowed:
        raise InputFileError(
            name, f"format {fmt!r} is not supported here (use {', '.join(allowed)})"
        )
    return fmt


def check_output_path(output: str | PathLike[str], *inputs: str | PathLike[str]) -> None:
    """Refuse an output that is one of ``inputs`` (the same path once resolved, or the
    same file by identity: a link, a hard link, another spelling). Reads nothing.

    Raises:
        InputFileError: naming both files.
    """
    out = fspath(output)
    for given in inputs:
        name = fspath(given)
        same = Path(out).resolve() == Path(name).resolve()
        if not same and os.path.exists(out) and os.path.exists(name):
            same = os.path.samefile(out, name)
        if same:
            raise InputFileError(
                out, f"the output is the input file {name}; write the results to another file"
            )


def read_input(
    path: str | PathLike[str],
    fmt: str | None = None,
    *,
    require_key: bool = False,
    one_width: bool = True,
    dtype: str | None = None,
) -> InputData:
    """Read every good record of an input file.

    ``dtype`` (a pipeline's ``dtype``: float16, float32 or float64) is the dtype values
    are read as; None: float64 for text, an ``.npy`` float array's own dtype (integers
    and booleans as float64). A record holding a value that dtype cannot hold is a bad
    record.

    ``require_key``: a record without an integer ``key`` is a bad record (the pipeline
    routes by key). ``one_width``: every record must have the first good record's
    width (columnar mode); otherwise records of any length are read (per-message mode).

    Raises:
        InputFileError: the file is missing or unreadable, of unknown format or shape,
            or holds no good record at all (the first bad record's problem is named).
        ParameterValueError: ``dtype`` is not one of the three.
    """
    given = None if dtype is None else parse_dtype(dtype)
    name = fspath(path)
    kind = format_of(name, fmt, INPUT_FORMATS)
    if not os.path.exists(name):
        raise InputFileError(name, "no such file")
    if not Path(name).is_file():
        raise InputFileError(name, "is not a regular file (a directory?)")
    if kind == "npy":
        return _read_npy(name, require_key, given)
    if kind in STREAMED_FORMATS:
        from ._table_input import read_table  # pyarrow only when such a file is read

        return read_table(name, kind, require_key=require_key, one_width=one_width, dtype=dtype)
    builder = _Builder(name, input_dtype(given), require_key=require_key, one_width=one_width)
    try:
        with open(name, encoding="utf-8", newline="") as handle:
            if kind == "jsonl":
                _read_jsonl(handle, builder)
            else:
                _read_csv(handle, builder)
    except UnicodeDecodeError as exc:
        raise InputFileError(name, f"not UTF-8 text: {exc}") from None
    except csv.Error as exc:
        raise InputFileError(name, f"not readable as CSV: {exc}") from None
    except OSError as exc:
        raise InputFileError(name, f"cannot be read: {exc.strerror or exc}") from None
    return builder.finish()


def routes_by_key(plan: PipelinePlan) -> bool:
    """Whether ``plan`` routes records by key (a ``distributor`` with ``mode = "key"``),
    so an input record without a key is a bad record."""
    return any(
        stage.definition.name == "distributor" and stage.params.get("mode") == "key"
        for stage in plan.stages
    )


def ragged_records(data: InputData, run_id: int) -> Iterator[Record]:
    """Per-message :class:`Record`\\ s of ``data``'s records of any length, with the ids
    :func:`~pydotcompute.pipeline.records_from_array` would give rows of one width."""
    rows: Sequence[npt.NDArray[np.floating[Any]]] = (
        data.ragged if data.ragged is not None else [] if data.values is None else list(data.values)
    )
    uuids = array_to_ids(record_ids_for_rows(0, len(rows), run_id))
    keys = [None] * len(rows) if data.keys is None else data.keys.tolist()
    for row, uid, key in zip(rows, uuids, keys, strict=True):
        yield Record(values=row, key=key, message_id=uid)


# Good rows are packed into arrays this many at a time, so a big text file never sits
# in memory as Python floats (24 bytes each instead of 8 or fewer).
_PACK_ROWS = 4096


class _Builder:
    """Collects good rows (checking widths and the dtype's range) and bad-row reports."""

    def __init__(
        self, path: str, dtype: np.dtype[Any], *, require_key: bool, one_width: bool
    ) -> None:
        self.path = path
        self.dtype = dtype
        self.require_key = require_key
        self.one_width = one_width
        self.rows: list[list[float]] = []
        self.packed: list[npt.NDArray[np.floating[Any]]] = []
        self.singles: list[npt.NDArray[np.floating[Any]]] = []
        self.index: list[int] = []
        self.ids: list[Any] = []
        self.keys: list[int | None] = []
        self.errors: list[InputRecordError] = []
        self.width: int | None = None
        self.records = 0

    def bad(self, line: int, field: str, problem: str) -> None:
        self.errors.append(InputRecordError(self.path, line, field, problem))
        self.records += 1

    def good(
        self,
        line: int,
        row: list[float],
        own_id: Any,
        key: int | None,
        field: str,
        names: Sequence[str] | None = None,
    ) -> None:
        """Take one parsed record; ``names`` name its values (CSV columns), else they
        are ``field[i]``."""
        if not row:
            self.bad(line, field, "is empty; a record needs at least one value")
            return
        lost = _row_problem(row, self.dtype)
        if lost is not None:
            self.bad(line, names[lost[0]] if names else f"{field}[{lost[0]}]", lost[1])
            return
        if key is None and self.require_key:
            self.bad(line, "key", "missing; this pipeline routes records by their integer key")
            return
        if not self.one_width:
            self.singles.append(np.array(row, dtype=self.dtype))
        elif self.width is None:
            self.width = len(row)
        elif len(row) != self.width:
            self.bad(
                line,
                field,
                f"has {len(row)} values, but the records before it have {self.width}; "
                "columnar mode needs one width (--mode per-message takes any length)",
            )
            return
        if self.one_width:
            self.rows.append(row)
        self.index.append(self.records)
        self.ids.append(own_id)
        self.keys.append(key)
        self.records += 1
        if len(self.rows) >= _PACK_ROWS:
            self._pack()

    def _pack(self) -> None:
        if self.rows:
            width = self.width or 0
            self.packed.append(np.array(self.rows, dtype=self.dtype).reshape(-1, width))
            self.rows = []

    def finish(self) -> InputData:
        self._pack()
        if not self.index:
            if self.errors:
                raise InputFileError(
                    self.path, f"no good record; the first problem: {self.errors[0]}"
                )
            raise InputFileError(self.path, "the file holds no records")
        values: npt.NDArray[np.floating[Any]] | None
        ragged: list[npt.NDArray[np.floating[Any]]] | None = None
        if self.one_width:
            values = self.packed[0] if len(self.packed) == 1 else np.concatenate(self.packed)
        elif len({len(row) for row in self.singles}) == 1:
            values = np.stack(self.singles)
        else:
            values, ragged = None, self.singles
        keys = None if any(k is None for k in self.keys) else np.array(self.keys, dtype=np.int64)
        return InputData(
            path=self.path,
            values=values,
            index=np.array(self.index, dtype=np.int64),
            ids=self.ids,
            keys=keys,
            errors=self.errors,
            ragged=ragged,
        )


def _row_problem(row: list[float], dtype: np.dtype[Any]) -> tuple[int, str] | None:
    """The first value of ``row`` that ``dtype`` cannot hold, and why; None if all fit."""
    for i, value in enumerate(row):
        problem = cast_problem(value, dtype)
        if problem is not None:
            return i, problem
    return None


class _TooLarge(float):
    """A JSON number beyond float64: parsed as infinity, but not what the file says."""


def _json_float(text: str) -> float:
    value = float(text)
    return _TooLarge(value) if math.isinf(value) else value


def _number(value: Any) -> float | str:
    """A JSON value as a number (null is NaN; an integer stays an int, so its exactness
    in the dtype read is judged on the number written), or what is wrong with it."""
    if value is None:
        return math.nan
    if isinstance(value, _TooLarge):
        return "overflows float64"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"not a number: {value!r}"
    try:
        float(value)
    except OverflowError:
        return f"{value} overflows float64"
    return value


def _read_jsonl(handle: IO[str], out: _Builder) -> None:
    for line_no, line in enumerate(handle, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            record = json.loads(text, parse_float=_json_float)
        except json.JSONDecodeError as exc:
            out.bad(line_no, "<line>", f"not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        except (ValueError, RecursionError) as exc:  # e.g. an integer of 5000 digits
            out.bad(line_no, "<line>", f"not readable JSON: {exc}")
            continue
        own_id: Any = None
        key: int | None = None
        raw: Any
        if isinstance(record, list):
            raw = record
        elif isinstance(record, dict):
            if "values" not in record:
                out.bad(line_no, "values", 'missing (each line needs a "values" list)')
                continue
            raw = record["values"]
            own_id = record.get("id")
            if own_id is not None and (
                isinstance(own_id, bool) or not isinstance(own_id, (str, int))
            ):
                out.bad(line_no, "id", f"must be a string or an integer, got {own_id!r}")
                continue
            if record.get("key") is not None:
                key = record["key"]
                if isinstance(key, bool) or not isinstance(key, int):
                    out.bad(line_no, "key", f"must be an integer, got {key!r}")
                    continue
        else:
            out.bad(line_no, "<line>", "must be a JSON object or a list of numbers")
            continue
        if not isinstance(raw, list):
            out.bad(line_no, "values", f"must be a list of numbers, got {type(raw).__name__}")
            continue
        row: list[float] = []
        for i, value in enumerate(raw):
            number = _number(value)
            if isinstance(number, str):
                out.bad(line_no, f"values[{i}]", number)
                break
            row.append(number)
        else:
            out.good(line_no, row, own_id, key, "values")


def _read_csv(handle: IO[str], out: _Builder) -> None:
    reader = csv.reader(handle)
    header: list[str] | None = None
    value_columns: list[int] = []
    id_column: int | None = None
    key_column: int | None = None
    for row in reader:
        line_no = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if header is None:
            if all(not isinstance(_parse_cell(cell), str) for cell in row):
                header = [f"column {i + 1}" for i in range(len(row))]  # no header line
                value_columns = list(range(len(row)))
            else:
                header = [cell.strip() for cell in row]
                lowered = [h.lower() for h in header]
                id_column = next((i for i, h in enumerate(lowered) if h in _ID_COLUMNS), None)
                key_column = next((i for i, h in enumerate(lowered) if h in _KEY_COLUMNS), None)
                value_columns = [i for i in range(len(header)) if i not in (id_column, key_column)]
                continue
        if len(row) != len(header):
            out.bad(line_no, "<row>", f"has {len(row)} cells, the header has {len(header)}")
            continue
        values: list[float] = []
        failed = False
        for i in value_columns:
            number = _parse_cell(row[i])
            if isinstance(number, str):
                out.bad(line_no, header[i], number)
                failed = True
                break
            values.append(number)
        if failed:
            continue
        key: int | None = None
        if key_column is not None:
            cell = row[key_column].strip()
            try:
                key = int(cell) if cell else None
            except ValueError:
                out.bad(line_no, header[key_column], f"must be an integer, got {cell!r}")
                continue
        own_id = row[id_column].strip() if id_column is not None else None
        names = [header[i] for i in value_columns]
        out.good(line_no, values, own_id or None, key, "values", names)


def _parse_cell(cell: str) -> float | str:
    """A CSV cell as a float (empty is NaN: a missing value), or what is wrong with it."""
    text = cell.strip()
    if not text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        return f"not a number: {cell!r}"
    if math.isinf(value) and text.lower() not in _INF_WORDS:
        return f"{text} overflows float64"
    if abs(value) >= _FLOAT64_EXACT and text.lstrip("+-").isdecimal():
        return int(text)  # the integer written: its exactness is judged on it, not on float64's
    return value


def _read_npy(path: str, require_key: bool, dtype: np.dtype[Any] | None) -> InputData:
    try:
        array: Any = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputFileError(path, f"not a readable .npy file: {exc}") from None
    if not isinstance(array, np.ndarray):
        raise InputFileError(path, "holds no single array (an .npz archive?)")
    if array.dtype.kind not in "biuf":
        raise InputFileError(path, f"holds {array.dtype} values; a numeric array is needed")
    if array.ndim != 2 or array.shape[1] == 0:
        raise InputFileError(
            path,
            f"holds an array of shape {array.shape}; a 2-D (records, width) array with "
            "at least one column is needed (reshape a vector to (n, 1) or (1, n))",
        )
    if array.shape[0] == 0:
        raise InputFileError(path, f"holds no records (shape {array.shape})")
    if require_key:
        raise InputFileError(
            path, "an .npy file carries no keys, and this pipeline routes records by key"
        )
    target = input_dtype(dtype, array.dtype)
    good, problems = rows_that_fit(array, target)
    errors = [
        InputRecordError(path, row + 1, f"values[{column}]", problem)
        for row, column, problem in problems
    ]
    if not good.any():
        raise InputFileError(path, f"no good record; the first problem: {errors[0]}")
    index = np.flatnonzero(good).astype(np.int64)
    return InputData(
        path=path,
        values=np.ascontiguousarray(array[good] if errors else array, dtype=target),
        index=index,
        ids=[None] * len(index),
        keys=None,
        errors=errors,
    )


# -- results -------------------------------------------------------------------------------


def result_rows(msg: Any, label: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The records of one result message as ``(root id or (n,2) row, JSON-ready dict)``.

    ``label(ids)`` turns an ``(n, 2)`` id array into output ids (one per row). A
    per-message result gives its payload (``values``/``normalized`` vector, or its
    statistics as columns) plus ``key``; a RecordBatch gives each row with its columns
    (or vector), ``key`` and ``count``; a StageError gives ``error`` and ``stage`` for
    each record it covers.
    """
    if type(msg) is StageError:
        for name in label(msg.record_ids):
            yield name, {"error": msg.error, "stage": msg.stage}
        return
    if type(msg) is RecordBatch:
        names = label(msg.record_ids)
        rows = msg.values.tolist()
        keys = None if msg.keys is None else msg.keys.tolist()
        counts = None if msg.counts is None else msg.counts.tolist()
        for i, row in enumerate(rows):
            data: dict[str, Any] = (
                dict(zip(msg.columns, row, strict=True)) if msg.columns else {msg.field: row}
            )
            if keys is not None:
                data["key"] = keys[i]
            if counts is not None:
                data["count"] = counts[i]
            yield names[i], data
        return
    (name,) = label(ids_to_array([root_id(msg)]))
    yield name, _message_fields(msg)


def _message_fields(msg: Any) -> dict[str, Any]:
    try:
        vector, columns, field = payload_of(msg)
    except TypeError:
        fields = {
            f.name: _jsonable(getattr(msg, f.name))
            for f in dataclasses.fields(msg)
            if f.name not in _STANDARD_FIELDS
        }
        return fields
    values = _jsonable(vector)
    data: dict[str, Any] = dict(zip(columns, values, strict=True)) if columns else {field: values}
    key = getattr(msg, "key", None)
    if key is not None:
        data["key"] = _jsonable(key)
    return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def nan_to_null(value: Any) -> Any:
    """``value`` with every NaN and infinity, in lists and dicts too, as None: they are
    not JSON, and null is how the JSON this tool writes (results, reports) says so."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [nan_to_null(v) for v in value]
    if isinstance(value, dict):
        return {k: nan_to_null(v) for k, v in value.items()}
    return value


def npy_output_problem(plan: PipelinePlan) -> str | None:
    """Why ``plan``'s results cannot go into one ``.npy`` array, or None if they can.

    An array holds one kind of row: the results of one sink stage that takes from one
    stage. Several sinks, or a sink gathering several stages' results (which differ in
    their columns), need JSON Lines, where each line names its record and columns.
    """
    sinks = [stage for stage in plan.stages if not stage.outputs]
    if len(sinks) > 1:
        names = ", ".join(repr(stage.name) for stage in sinks)
        return (
            f"pipeline {plan.name!r} has {len(sinks)} sinks ({names}); one .npy array "
            "cannot hold their different results: write .jsonl instead"
        )
    for stage in sinks:
        if len(stage.inputs) > 1:
            names = ", ".join(repr(name) for name in stage.inputs)
            return (
                f"sink {stage.name!r} gathers results of {len(stage.inputs)} stages "
                f"({names}), which differ in shape; one .npy array cannot hold them: "
                "write .jsonl instead"
            )
    return None


#: How many input rows without a result a writer names (it counts them all).
FIRST_MISSING = 100


class ResultWriter:
    """Writes results as they arrive: JSON Lines at once, Parquet and Arrow IPC a row
    group or record batch at a time (:class:`._table_output.TableWriter`; :meth:`close` writes
    the footer), ``.npy`` at :meth:`close`.

    The file is created (emptied) when the writer is, so an unwritable path fails
    before the run. ``label(ids)`` names records in JSON (see :func:`result_rows`);
    ``row_of(ids)`` maps an ``(n, 2)`` id array to input row numbers (-1 for records
    that are no input record, such as an aggregator's sums).

    ``.npy`` order rule: when every result is an input record's own result, one each,
    rows are in input order, and a record without a result (it failed in a stage, or
    was not computed before an interrupt) has no row: no placeholder that could pass
    for a result. :attr:`missing` counts those records and :attr:`first_missing` lists the
    input rows of the first :data:`FIRST_MISSING` of them. Otherwise (an
    aggregator's rows, several results per record) rows are in completion order.
    ``.npy`` output needs results of one shape (see :func:`npy_output_problem`).
    """

    def __init__(
        self,
        path: str | PathLike[str],
        fmt: str | None,
        *,
        label: Any,
        row_of: Any,
        input_rows: int,
    ) -> None:
        self.path = fspath(path)
        self.format = format_of(self.path, fmt, OUTPUT_FORMATS)
        self._label = label
        self._row_of = row_of
        #: Input records the ``.npy`` rows are counted against (:attr:`missing`); a
        #: streamed input's good records are known once it is read.
        self.input_rows = input_rows
        self.records = 0  #: result records written (errors included)
        self.errors = 0  #: StageError records written
        self.rows = 0  #: rows the .npy file holds, once closed
        #: input records without a row in the .npy, once closed
        self.missing = 0
        #: the first FIRST_MISSING of them, as input rows (ascending)
        self.first_missing: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._shape: tuple[int, tuple[str, ...]] | None = None
        self._mixed: str | None = None
        self._chunks: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.floating[Any]]]] = []
        self._table: Any = None
        if self.format in STREAMED_FORMATS:
            from ._table_output import TableWriter  # pyarrow only when such a file is written

            self._table = TableWriter(self.path, self.format, label=label)
        # Opened here, in binary for .npy: np.save given a path would append ".npy".
        mode = "w" if self.format == "jsonl" else "wb"
        encoding = "utf-8" if self.format == "jsonl" else None
        self._handle: IO[Any] | None = (
            None if self._table is not None else open(self.path, mode, encoding=encoding)  # noqa: SIM115
        )

    def write(self, msg: Any) -> None:
        """Write one result message (any number of records)."""
        if type(msg) is StageError:
            self.errors += len(msg)
        if self._table is not None:
            self._table.write(msg)
            self.records += record_count(msg)
            return
        if self.format == "jsonl":
            text, records = self._jsonl(msg)
            self.records += records
            if text and self._handle is not None:
                self._handle.write(text)
            return
        if type(msg) is StageError:
            self.records += len(msg)
            return
        rows, values, columns = _numeric(msg)
        self.records += len(values)
        shape = (values.shape[1], columns)
        if self._shape is None:
            self._shape = shape
        elif shape != self._shape and self._mixed is None:
            self._mixed = (
                f"results of two shapes ({_describe_shape(self._shape)} and "
                f"{_describe_shape(shape)}) cannot share one .npy array: write .jsonl instead"
            )
        self._chunks.append((self._row_of(rows), values))

    def _jsonl(self, msg: Any) -> tuple[str, int]:
        """The JSON Lines of ``msg``'s records, and how many there are."""
        cls = type(msg)
        if cls is StageError:
            return error_lines(msg, self._label(msg.record_ids)), len(msg)
        if cls is RecordBatch:
            text = batch_lines(msg, self._label(msg.record_ids))
            if text is not None:
                return text, len(msg)
        lines = [
            json.dumps({"id": name, **nan_to_null(data)}, allow_nan=False) + "\n"
            for name, data in result_rows(msg, self._label)
        ]
        return "".join(lines), len(lines)

    def close(self) -> None:
        """Finish the file. Idempotent.

        Raises:
            InputFileError: ``.npy`` results came in two shapes (the file is left
                empty; nothing is written that would misplace them).
        """
        table, self._table = self._table, None
        if table is not None:
            table.close()
            self.rows = table.rows
            return
        handle, self._handle = self._handle, None
        if handle is None:
            return
        try:
            if self.format == "npy":
                if self._mixed is not None:
                    raise InputFileError(self.path, self._mixed)
                out = self._array()
                np.save(handle, out)
                self.rows = int(out.shape[0])
        finally:
            handle.close()

    def _array(self) -> npt.NDArray[np.floating[Any]]:
        chunks, self._chunks = self._chunks, []
        if not chunks:
            self.missing = self.input_rows
            self.first_missing = np.arange(min(self.input_rows, FIRST_MISSING), dtype=np.int64)
            return np.zeros((0, 0), dtype=np.float32)
        all_rows = np.concatenate([c[0] for c in chunks])
        all_values = np.concatenate([c[1] for c in chunks])
        if not (all_rows >= 0).all():
            return all_values
        # Sorting and comparing neighbours (no np.unique, many times slower); results
        # mostly come in input order, which needs no sort at all.
        order: npt.NDArray[np.intp] | None = None
        rows = all_rows
        if not (rows[1:] > rows[:-1]).all():
            order = np.argsort(rows, kind="stable")
            rows = rows[order]
            if (rows[1:] == rows[:-1]).any():  # a record with several results
                return all_values
        # Work in the results, never in the input's size: an interrupted run may have
        # been given a hundred million records and fed a few.
        self.missing = self.input_rows - len(rows)
        # Among the first len(rows) + FIRST_MISSING rows at most len(rows) are present,
        # so the first missing ones are all there.
        absent = np.ones(min(self.input_rows, len(rows) + FIRST_MISSING), dtype=bool)
        absent[rows[rows < len(absent)]] = False
        self.first_missing = np.flatnonzero(absent)[:FIRST_MISSING].astype(np.int64)
        return all_values if order is None else all_values[order]

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe_shape(shape: tuple[int, tuple[str, ...]]) -> str:
    width, columns = shape
    return f"columns {', '.join(columns)}" if columns else f"{width} values"


def _numeric(
    msg: Any,
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.floating[Any]], tuple[str, ...]]:
    if type(msg) is RecordBatch:
        values = as_float_array(msg.values).reshape(len(msg), -1)
        return msg.record_ids, values, tuple(msg.columns)
    vector, columns, _ = payload_of(msg)
    row = as_float_array(vector).reshape(1, -1)
    return ids_to_array([root_id(msg)]), row, tuple(columns)
