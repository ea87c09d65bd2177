"""The command-line tool's input readers and output writers.

Inputs: JSON Lines, CSV, ``.npy``. A bad record never costs the good ones: it is
skipped and reported as an :class:`InputRecordError` naming the file, the line and the
field, and every good record is read. Outputs: JSON Lines (one line per result record)
or ``.npy`` (one row per input record, in input order).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Iterator, Sequence
from os import PathLike, fspath
from pathlib import Path
from typing import IO, Any, Final

import numpy as np
import numpy.typing as npt

from ..dataflow import RecordBatch, StageError, ids_to_array, payload_of, root_id
from ..errors import InputFileError

__all__ = [
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "InputData",
    "InputFileError",
    "InputRecordError",
    "ResultWriter",
    "format_of",
    "read_input",
    "result_rows",
]

INPUT_FORMATS: Final = ("jsonl", "csv", "npy")
OUTPUT_FORMATS: Final = ("jsonl", "npy")
_EXTENSIONS: Final = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".npy": "npy",
}
_ID_COLUMNS: Final = ("id",)
_KEY_COLUMNS: Final = ("key",)
_STANDARD_FIELDS: Final = frozenset({"message_id", "priority", "correlation_id", "deadline"})


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

    ``values`` is ``(n, width)`` float32; ``index`` the 0-based position of each good
    record among all records of the file; ``ids`` the record's own ``id`` (None where
    it had none); ``keys`` per-record int64 keys when every good record has one.
    """

    path: str
    values: npt.NDArray[np.float32]
    index: npt.NDArray[np.int64]
    ids: list[Any]
    keys: npt.NDArray[np.int64] | None
    errors: list[InputRecordError]

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def label(self, row: int) -> Any:
        """How output names good record ``row``: its own id, else its position."""
        own = self.ids[row]
        return int(self.index[row]) if own is None else own


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
            f"use one of {', '.join(sorted(_EXTENSIONS))} or --format",
        )
    if fmt not in allowed:
        raise InputFileError(
            name, f"format {fmt!r} is not supported here (use {', '.join(allowed)})"
        )
    return fmt


def read_input(path: str | PathLike[str], fmt: str | None = None) -> InputData:
    """Read every good record of an input file.

    Raises:
        InputFileError: the file is missing or unreadable, of unknown format, or holds
            no good record at all (the first bad record's problem is named).
    """
    name = fspath(path)
    kind = format_of(name, fmt, INPUT_FORMATS)
    if not Path(name).is_file():
        raise InputFileError(name, "no such file")
    if kind == "npy":
        return _read_npy(name)
    try:
        with open(name, encoding="utf-8", newline="") as handle:
            builder = _Builder(name)
            if kind == "jsonl":
                _read_jsonl(handle, builder)
            else:
                _read_csv(handle, builder)
    except UnicodeDecodeError as exc:
        raise InputFileError(name, f"not UTF-8 text: {exc}") from None
    return builder.finish()


# Good rows are packed into float32 arrays this many at a time, so a big text file
# never sits in memory as Python floats (24 bytes each instead of 4).
_PACK_ROWS = 4096


class _Builder:
    """Collects good rows (checking they share one width) and bad-row reports."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.rows: list[list[float]] = []
        self.packed: list[npt.NDArray[np.float32]] = []
        self.index: list[int] = []
        self.ids: list[Any] = []
        self.keys: list[int | None] = []
        self.errors: list[InputRecordError] = []
        self.width: int | None = None
        self.records = 0

    def bad(self, line: int, field: str, problem: str) -> None:
        self.errors.append(InputRecordError(self.path, line, field, problem))
        self.records += 1

    def good(self, line: int, row: list[float], own_id: Any, key: int | None) -> None:
        if self.width is None:
            self.width = len(row)
        elif len(row) != self.width:
            self.bad(
                line,
                "values",
                f"has {len(row)} values, but the records before it have {self.width}",
            )
            return
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
            self.packed.append(np.array(self.rows, dtype=np.float32).reshape(-1, width))
            self.rows = []

    def finish(self) -> InputData:
        self._pack()
        if not self.packed:
            if self.errors:
                raise InputFileError(
                    self.path, f"no good record; the first problem: {self.errors[0]}"
                )
            raise InputFileError(self.path, "the file holds no records")
        values = self.packed[0] if len(self.packed) == 1 else np.concatenate(self.packed)
        keys = None if any(k is None for k in self.keys) else np.array(self.keys, dtype=np.int64)
        return InputData(
            path=self.path,
            values=values,
            index=np.array(self.index, dtype=np.int64),
            ids=self.ids,
            keys=keys,
            errors=self.errors,
        )


def _number(value: Any) -> float | None:
    """A JSON value as a float (null is NaN); None if it is not a number."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _read_jsonl(handle: IO[str], out: _Builder) -> None:
    for line_no, line in enumerate(handle, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            out.bad(line_no, "<line>", f"not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        own_id: Any = None
        key: int | None = None
        raw: Any
        if isinstance(record, list):
            raw = record
            field = "values"
        elif isinstance(record, dict):
            if "values" not in record:
                out.bad(line_no, "values", 'missing (each line needs a "values" list)')
                continue
            raw = record["values"]
            field = "values"
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
            out.bad(line_no, field, f"must be a list of numbers, got {type(raw).__name__}")
            continue
        row: list[float] = []
        for i, value in enumerate(raw):
            number = _number(value)
            if number is None:
                out.bad(line_no, f"{field}[{i}]", f"not a number: {value!r}")
                break
            row.append(number)
        else:
            out.good(line_no, row, own_id, key)


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
            if all(_parse_cell(cell) is not None for cell in row):
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
            if number is None:
                out.bad(line_no, header[i], f"not a number: {row[i]!r}")
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
        out.good(line_no, values, own_id or None, key)


def _parse_cell(cell: str) -> float | None:
    text = cell.strip()
    if not text:
        return math.nan  # an empty cell is a missing value
    try:
        return float(text)
    except ValueError:
        return None


def _read_npy(path: str) -> InputData:
    try:
        array: Any = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputFileError(path, f"not a readable .npy file: {exc}") from None
    if not isinstance(array, np.ndarray):
        raise InputFileError(path, "holds no single array (an .npz archive?)")
    if array.dtype.kind not in "biuf":
        raise InputFileError(path, f"holds {array.dtype} values; a numeric array is needed")
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise InputFileError(
            path, f"holds an array of shape {array.shape}; (records, width) is needed"
        )
    n = array.shape[0]
    return InputData(
        path=path,
        values=np.ascontiguousarray(array, dtype=np.float32),
        index=np.arange(n, dtype=np.int64),
        ids=[None] * n,
        keys=None,
        errors=[],
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


class ResultWriter:
    """Writes results as they arrive: JSON Lines at once, ``.npy`` at :meth:`close`.

    ``label(ids)`` names records in JSON (see :func:`result_rows`); ``row_of(ids)``
    maps an ``(n, 2)`` id array to input row numbers (-1 for records that are no input
    record, such as an aggregator's sums). ``.npy`` output holds one row per input
    record in input order (NaN for records without a result), or, when some result is
    no input record, the results in completion order.
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
        self._input_rows = input_rows
        self.records = 0  #: result records written (errors included)
        self.errors = 0  #: StageError records written
        self._handle: IO[str] | None = None
        self._chunks: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]] = []
        if self.format == "jsonl":
            self._handle = open(self.path, "w", encoding="utf-8")  # noqa: SIM115

    def write(self, msg: Any) -> None:
        """Write one result message (any number of records)."""
        if type(msg) is StageError:
            self.errors += len(msg)
        if self._handle is not None:
            lines = []
            for name, data in result_rows(msg, self._label):
                lines.append(json.dumps({"id": name, **nan_to_null(data)}, allow_nan=False))
                self.records += 1
            if lines:
                self._handle.write("\n".join(lines) + "\n")
            return
        if type(msg) is StageError:
            self.records += len(msg)
            return
        rows, values = _numeric(msg)
        self.records += len(values)
        self._chunks.append((self._row_of(rows), values))

    def close(self) -> None:
        """Finish the file. Idempotent."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            return
        if self.format != "npy" or self._chunks is None:
            return
        chunks, self._chunks = self._chunks, []
        if not chunks:
            np.save(self.path, np.zeros((0, 0), dtype=np.float32))
            return
        width = chunks[0][1].shape[1]
        all_rows = np.concatenate([c[0] for c in chunks])
        all_values = np.concatenate([c[1] for c in chunks if c[1].shape[1] == width])
        if (
            len(all_rows) == len(all_values)
            and (all_rows >= 0).all()
            and len(np.unique(all_rows)) == len(all_rows)
        ):
            out = np.full((self._input_rows, width), np.nan, dtype=np.float32)
            out[all_rows] = all_values
        else:
            out = all_values
        np.save(self.path, out)

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _numeric(msg: Any) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.float32]]:
    if type(msg) is RecordBatch:
        return msg.record_ids, np.asarray(msg.values, dtype=np.float32)
    vector, _, _ = payload_of(msg)
    row = np.asarray(vector, dtype=np.float32).reshape(1, -1)
    return ids_to_array([root_id(msg)]), row
