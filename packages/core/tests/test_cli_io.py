"""The CLI's readers and writers: every format, every kind of bad record, no good row lost."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pydotcompute.cli import (
    InputFileError,
    InputRecordError,
    ResultWriter,
    format_of,
    read_input,
    result_rows,
)
from pydotcompute.stage import (
    Record,
    RecordBatch,
    StageError,
    array_to_ids,
    record_count,
    record_ids_for_rows,
    row_indices,
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- JSON Lines -------------------------------------------------------------------------


def test_jsonl_objects_and_bare_lists(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "in.jsonl",
        '{"values": [1, 2.5, 3], "id": "a", "key": 4}\n'
        "\n"
        "[4, 5, 6]\n"
        '{"values": [7, null, 9], "id": 17}\n',
    )
    data = read_input(path)
    assert data.errors == []
    np.testing.assert_array_equal(data.values, [[1, 2.5, 3], [4, 5, 6], [7, math.nan, 9]])
    assert data.values.dtype == np.float64  # text keeps the precision it was parsed in
    assert data.ids == ["a", None, 17] and data.index.tolist() == [0, 1, 2]
    assert data.keys is None  # not every record has a key
    assert [data.label(i) for i in range(3)] == ["a", 1, 17]


@pytest.mark.parametrize(
    ("line", "field", "problem"),
    [
        ('{"values": [1, 2, "x"]}', "values[2]", "not a number: 'x'"),
        ('{"values": [1, true, 3]}', "values[1]", "not a number: True"),
        ('{"vals": [1, 2, 3]}', "values", "missing"),
        ('{"values": "1,2,3"}', "values", "must be a list of numbers"),
        ('{"values": [1, 2, 3], "key": "k"}', "key", "must be an integer"),
        ('{"values": [1, 2, 3], "key": 1.5}', "key", "must be an integer"),
        ('{"values": [1, 2, 3], "id": [1]}', "id", "must be a string or an integer"),
        ('{"values": [1, 2, 3', "<line>", "not valid JSON"),
        ('"just a string"', "<line>", "must be a JSON object or a list of numbers"),
        ('{"values": [1, 2]}', "values", "has 2 values, but the records before it have 3"),
    ],
)
def test_jsonl_bad_record_is_reported_and_the_good_ones_kept(
    tmp_path: Path, line: str, field: str, problem: str
) -> None:
    path = write(
        tmp_path, "in.jsonl", f'{{"values": [1, 2, 3]}}\n{line}\n{{"values": [4, 5, 6]}}\n'
    )
    data = read_input(path)
    np.testing.assert_array_equal(data.values, [[1, 2, 3], [4, 5, 6]])
    assert data.index.tolist() == [0, 2]  # positions in the file are kept
    (error,) = data.errors
    assert (error.path, error.line, error.field) == (str(path), 2, field)
    assert problem in error.problem
    assert str(error).startswith(f"{path}:2: field {field!r}: ")


def test_jsonl_keys_when_every_record_has_one(tmp_path: Path) -> None:
    path = write(tmp_path, "k.jsonl", '{"values": [1], "key": -3}\n{"values": [2], "key": 8}\n')
    assert read_input(path).keys.tolist() == [-3, 8]  # type: ignore[union-attr]


def test_a_file_with_no_good_record_names_the_first_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.jsonl", '{"values": ["a"]}\nnope\n')
    with pytest.raises(
        InputFileError,
        match=r"bad.jsonl: no good record; the first problem: .*bad.jsonl:1: field 'values\[0\]'",
    ):
        read_input(path)


def test_an_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="holds no records"):
        read_input(write(tmp_path, "empty.jsonl", "\n\n"))


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"values": [1]}\n\xff\xfe\n')
    with pytest.raises(InputFileError, match="not UTF-8"):
        read_input(path)


# -- CSV --------------------------------------------------------------------------------


def test_csv_with_header_id_and_key_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "id,a,b,key\nr1,1,2,5\nr2,3,,6\n")
    data = read_input(path)
    np.testing.assert_array_equal(data.values, [[1, 2], [3, math.nan]])  # empty cell: missing
    assert data.ids == ["r1", "r2"] and data.keys.tolist() == [5, 6]  # type: ignore[union-attr]


def test_csv_without_header(tmp_path: Path) -> None:
    data = read_input(write(tmp_path, "in.csv", "1,2,3\n4,5,6\n"))
    np.testing.assert_array_equal(data.values, [[1, 2, 3], [4, 5, 6]])
    assert data.ids == [None, None]


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        ("r9,1,abc,1", "b", "not a number: 'abc'"),
        ("r9,1,2", "<row>", "has 3 cells, the header has 4"),
        ("r9,1,2,x", "key", "must be an integer"),
    ],
)
def test_csv_bad_row_is_reported_and_the_good_ones_kept(
    tmp_path: Path, row: str, field: str, problem: str
) -> None:
    path = write(tmp_path, "in.csv", f"id,a,b,key\nr1,1,2,1\n{row}\nr3,5,6,1\n")
    data = read_input(path)
    np.testing.assert_array_equal(data.values, [[1, 2], [5, 6]])
    (error,) = data.errors
    assert (error.line, error.field) == (3, field) and problem in error.problem


def test_csv_line_numbers_count_quoted_newlines(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", 'id,a\n"two\nlines",1\nr2,zz\n')
    (error,) = read_input(path).errors
    assert error.line == 4 and error.field == "a"


# -- .npy -------------------------------------------------------------------------------


def test_npy_2d(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.arange(6, dtype=np.int32).reshape(3, 2))
    data = read_input(tmp_path / "a.npy")
    assert data.values is not None
    assert data.values.dtype == np.float64 and data.values.shape == (3, 2)  # ints: float64
    assert read_input(tmp_path / "a.npy", dtype="float32").values.dtype == np.float32


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_npy_keeps_its_float_dtype_unless_one_is_asked_for(tmp_path: Path, dtype: str) -> None:
    array = (np.arange(6).reshape(3, 2) / 4).astype(dtype)
    np.save(tmp_path / "a.npy", array)
    data = read_input(tmp_path / "a.npy")
    assert data.values is not None and data.values.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(data.values, array)
    as64 = read_input(tmp_path / "a.npy", dtype="float64").values
    assert as64 is not None and as64.dtype == np.float64
    np.testing.assert_array_equal(as64, array)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((2, 2, 2)), r"shape \(2, 2, 2\); a 2-D \(records, width\) array"),
        (np.arange(5.0), r"shape \(5,\); a 2-D \(records, width\) array"),
        (np.zeros((3, 0)), r"shape \(3, 0\); .* at least one column"),
        (np.zeros((0, 5)), r"holds no records \(shape \(0, 5\)\)"),
        (np.array(["a", "b"]), "numeric array is needed"),
    ],
)
def test_npy_of_the_wrong_kind(tmp_path: Path, array: Any, match: str) -> None:
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(InputFileError, match=match):
        read_input(tmp_path / "x.npy")


def test_npy_that_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "bad.npy"
    path.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InputFileError, match=r"bad.npy: not a readable .npy file"):
        read_input(path)


def test_npy_with_objects_is_refused_without_unpickling(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(InputFileError, match=r"obj\.npy"):
        read_input(tmp_path / "obj.npy")


# -- formats ----------------------------------------------------------------------------


def test_format_from_extension_or_override(tmp_path: Path) -> None:
    assert format_of("x.JSONL", None, ("jsonl",)) == "jsonl"
    assert format_of("x.ndjson", None, ("jsonl",)) == "jsonl"
    assert format_of("x.txt", "csv", ("csv",)) == "csv"
    with pytest.raises(InputFileError, match=r"cannot tell the format from the extension '\.txt'"):
        format_of("x.txt", None, ("csv",))
    with pytest.raises(InputFileError, match="format 'csv' is not supported here"):
        format_of("out.csv", None, ("jsonl", "npy"))


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"nope\.csv: no such file"):
        read_input(tmp_path / "nope.csv")


def test_a_directory_is_not_called_missing(tmp_path: Path) -> None:
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(InputFileError, match=r"d\.csv: is not a regular file"):
        read_input(tmp_path / "d.csv")


# -- precision, keys, widths ------------------------------------------------------------


def test_text_is_read_as_float64_by_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.jsonl",
        "[16777217, 16777219, 16777221]\n"  # not exact in float32, exact in float64
        "[1e39, 1, 2]\n"  # beyond float32, within float64
        f"[{2**53 + 1}, 1, 2]\n"  # an integer float64 itself cannot hold exactly
        "[1e400, 1, 2]\n",  # beyond float64
    )
    data = read_input(path)
    assert data.values is not None and data.values.dtype == np.float64
    assert data.values.tolist() == [[16777217, 16777219, 16777221], [1e39, 1, 2]]
    assert [(e.line, e.field) for e in data.errors] == [(3, "values[0]"), (4, "values[0]")]
    assert data.errors[0].problem.startswith(f"{2**53 + 1} is not exact in float64")
    assert "integers are exact up to 2**53" in data.errors[0].problem
    assert "overflows float64" in data.errors[1].problem


def test_values_float16_cannot_hold_are_bad_records(tmp_path: Path) -> None:
    path = write(tmp_path, "h.csv", "a,b\n0.5,2048\n2049,1\n70000,1\n-4096,0.1\n")
    data = read_input(path, dtype="float16")
    assert data.values is not None and data.values.dtype == np.float16
    np.testing.assert_array_equal(data.values, np.array([[0.5, 2048], [-4096, 0.1]], np.float16))
    assert [(e.line, e.field) for e in data.errors] == [(3, "a"), (4, "a")]
    assert "2049 is not exact in float16 (it would become 2048" in data.errors[0].problem
    assert "integers are exact up to 2**11" in data.errors[0].problem
    assert "70000.0 overflows float16 (largest 65504)" in data.errors[1].problem


def test_an_unknown_dtype_is_refused_naming_the_choices(tmp_path: Path) -> None:
    path = write(tmp_path, "p.jsonl", "[1]\n")
    with pytest.raises(ValueError, match="float16, float32, float64, got 'bfloat16': numpy"):
        read_input(path, dtype="bfloat16")


def test_values_float32_cannot_hold_are_bad_records(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.jsonl",
        "[1, 2, 16777216]\n"  # 2**24: exact
        "[16777217, 1, 2]\n"  # not exact in float32
        "[1e39, 1, 2]\n"  # overflows float32
        "[1e400, 1, 2]\n"  # overflows float64
        f"[{10**400}, 1, 2]\n"  # an integer float64 cannot hold
        "[0.1, -16777218, 3.5]\n",  # even integers up to 2**25 are exact
    )
    data = read_input(path, dtype="float32")
    assert data.index.tolist() == [0, 5]
    assert [(e.line, e.field) for e in data.errors] == [
        (2, "values[0]"),
        (3, "values[0]"),
        (4, "values[0]"),
        (5, "values[0]"),
    ]
    assert "16777217 is not exact in float32 (it would become 16777216" in data.errors[0].problem
    assert "overflows float32" in data.errors[1].problem
    assert "overflows float64" in data.errors[2].problem
    assert data.values is not None and data.values.dtype == np.float32


def test_csv_overflow_is_a_bad_record_but_inf_is_a_value(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "a,b\n1,inf\n1e39,2\n1e999,2\n")
    data = read_input(path, dtype="float32")
    assert data.values is not None and data.values.tolist() == [[1.0, math.inf]]
    assert [(e.line, e.field) for e in data.errors] == [(3, "a"), (4, "a")]


def test_npy_rows_float32_cannot_hold_are_bad_records(tmp_path: Path) -> None:
    np.save(tmp_path / "f.npy", np.array([[1.0, 2.0], [1e39, 0.0], [16777217.0, 0.0]]))
    assert read_input(tmp_path / "f.npy").errors == []  # float64 holds them all
    data = read_input(tmp_path / "f.npy", dtype="float32")
    assert data.index.tolist() == [0]
    assert [(e.line, e.field) for e in data.errors] == [(2, "values[0]"), (3, "values[0]")]
    np.save(tmp_path / "i.npy", np.array([[2**40 + 1], [7]], dtype=np.int64))
    data = read_input(tmp_path / "i.npy", dtype="float32")
    assert data.index.tolist() == [1] and data.errors[0].line == 1
    np.save(tmp_path / "j.npy", np.array([[2**40 + 1], [2**53 + 1]], dtype=np.int64))
    data = read_input(tmp_path / "j.npy")  # integers become float64: exact up to 2**53
    assert data.values is not None and data.values.tolist() == [[2**40 + 1]]
    assert [(e.line, e.field) for e in data.errors] == [(2, "values[0]")]
    assert "not exact in float64" in data.errors[0].problem


def test_a_missing_key_is_a_bad_record_when_the_pipeline_routes_by_key(tmp_path: Path) -> None:
    path = write(tmp_path, "k.jsonl", '{"values": [1], "key": 1}\n{"values": [2]}\n')
    assert read_input(path).keys is None  # no routing: the keys are simply not used
    data = read_input(path, require_key=True)
    assert data.keys is not None and data.keys.tolist() == [1]
    assert [(e.line, e.field) for e in data.errors] == [(2, "key")]
    np.save(tmp_path / "k.npy", np.ones((2, 2)))
    with pytest.raises(InputFileError, match="carries no keys"):
        read_input(tmp_path / "k.npy", require_key=True)


def test_one_width_names_both_widths_and_the_way_out(tmp_path: Path) -> None:
    path = write(tmp_path, "w.jsonl", "[1, 2]\n[1, 2, 3]\n[4, 5]\n")
    data = read_input(path)
    assert data.index.tolist() == [0, 2]
    assert data.errors[0].line == 2
    assert "has 3 values, but the records before it have 2" in data.errors[0].problem
    assert "--mode per-message" in data.errors[0].problem


def test_records_of_any_length(tmp_path: Path) -> None:
    path = write(tmp_path, "w.jsonl", "[1, 2]\n[1, 2, 3]\n[]\n[4]\n")
    data = read_input(path, one_width=False)
    assert data.values is None and data.ragged is not None
    assert [r.tolist() for r in data.ragged] == [[1, 2], [1, 2, 3], [4]]
    assert [(e.line, e.field) for e in data.errors] == [(3, "values")]
    same = read_input(write(tmp_path, "s.jsonl", "[1, 2]\n[3, 4]\n"), one_width=False)
    assert same.ragged is None and same.values is not None and same.values.shape == (2, 2)


# -- results ----------------------------------------------------------------------------


def label_rows(ids: Any) -> list[Any]:
    return [f"row{r}" for r in row_indices(ids).tolist()]


def test_result_rows_of_each_kind() -> None:
    ids = record_ids_for_rows(0, 2, 1)
    batch = RecordBatch(
        values=np.array([[1.0, 2.0], [3.0, 4.0]]),
        record_ids=ids,
        columns=("mean", "std"),
        keys=np.array([7, 8]),
    )
    assert list(result_rows(batch, label_rows)) == [
        ("row0", {"mean": 1.0, "std": 2.0, "key": 7}),
        ("row1", {"mean": 3.0, "std": 4.0, "key": 8}),
    ]
    vectors = RecordBatch(
        values=np.ones((1, 2)), record_ids=ids[:1], field="normalized", counts=np.array([3])
    )
    assert list(result_rows(vectors, label_rows)) == [
        ("row0", {"normalized": [1.0, 1.0], "count": 3})
    ]
    second = array_to_ids(ids)[1]
    assert list(
        result_rows(Record(values=np.array([0.5]), key=2, correlation_id=second), label_rows)
    ) == [("row1", {"values": [0.5], "key": 2})]
    error = StageError(stage="s", kernel="s_0", error="ValueError: x", record_ids=ids)
    assert list(result_rows(error, label_rows)) == [
        ("row0", {"error": "ValueError: x", "stage": "s"}),
        ("row1", {"error": "ValueError: x", "stage": "s"}),
    ]


def test_jsonl_writer_writes_nan_as_null(tmp_path: Path) -> None:
    ids = record_ids_for_rows(0, 1, 1)
    with ResultWriter(
        tmp_path / "o.jsonl", None, label=label_rows, row_of=row_indices, input_rows=1
    ) as w:
        w.write(
            RecordBatch(values=np.array([[math.nan, math.inf]]), record_ids=ids, columns=("a", "b"))
        )
    assert json.loads((tmp_path / "o.jsonl").read_text()) == {"id": "row0", "a": None, "b": None}
    assert w.records == 1


def one_line_per_row(msg: Any, label: Any) -> str:
    """What the writer's lines must be: ``json.dumps`` of each row's dict, non-finite
    numbers as null."""

    def null(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, list):
            return [null(v) for v in value]
        return value

    return "".join(
        json.dumps({"id": name, **{k: null(v) for k, v in data.items()}}, allow_nan=False) + "\n"
        for name, data in result_rows(msg, label)
    )


def written_jsonl(tmp_path: Path, msg: Any, label: Any) -> str:
    path = tmp_path / "o.jsonl"
    with ResultWriter(path, None, label=label, row_of=row_indices, input_rows=9) as w:
        w.write(msg)
    assert w.records == record_count(msg)
    return path.read_text()


_FLOAT_DTYPES = st.sampled_from([np.float16, np.float32, np.float64])
_NAMES = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.one_of(
        _FLOAT_DTYPES.flatmap(
            lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=2, max_dims=2, min_side=0))
        ),
        hnp.arrays(
            st.sampled_from([np.int64, np.uint64, np.int8]),
            hnp.array_shapes(min_dims=2, max_dims=2, min_side=0),
        ),
    ),
    named=st.booleans(),
    names=st.lists(_NAMES, min_size=8, max_size=8),
    keys=st.booleans(),
    counts=st.booleans(),
    own_ids=st.lists(st.one_of(st.integers(), _NAMES), min_size=1),
)
def test_jsonl_lines_of_a_batch_are_json_dumps_of_each_row(
    tmp_path_factory: pytest.TempPathFactory,
    values: Any,
    named: bool,
    names: list[str],
    keys: bool,
    counts: bool,
    own_ids: list[Any],
) -> None:
    n, width = values.shape
    columns = tuple(names[:width]) if named and width <= len(names) else ()

    def label(ids: Any) -> list[Any]:
        return [own_ids[r % len(own_ids)] for r in row_indices(ids).tolist()]

    batch = RecordBatch(
        values=values,
        record_ids=record_ids_for_rows(0, n, 1),
        keys=np.arange(n) - 3 if keys else None,
        columns=columns,
        field=names[0] if names[0] else "normalized",
        counts=np.arange(n) + 2**40 if counts else None,
    )
    assert written_jsonl(tmp_path_factory.mktemp("o"), batch, label) == one_line_per_row(
        batch, label
    )


@pytest.mark.parametrize(
    "msg",
    [
        RecordBatch(
            values=np.array([[math.nan, -math.inf, -0.0, 1e-5, 1e16, 5e-324, 0.1]]),
            record_ids=record_ids_for_rows(0, 1, 1),
            columns=("a%s", 'b"', "ünï", "id ", "%d", "f", "g"),
            keys=np.array([-7]),
        ),
        RecordBatch(
            values=np.array([[1.5, math.nan], [2.0, 3.0]], dtype=np.float32),
            record_ids=record_ids_for_rows(0, 2, 1),
            field="normalized",
            counts=np.array([1, 2]),
        ),
        RecordBatch(  # "key" as a column and keys too: one dict key, as json.dumps has it
            values=np.array([[1.0]]),
            record_ids=record_ids_for_rows(0, 1, 1),
            columns=("key",),
            keys=np.array([4]),
        ),
        RecordBatch(
            values=np.array([[1.0]]), record_ids=record_ids_for_rows(0, 1, 1), columns=("id",)
        ),
        RecordBatch(values=np.array([[True]]), record_ids=record_ids_for_rows(0, 1, 1)),
        RecordBatch(values=np.zeros((0, 2)), record_ids=record_ids_for_rows(0, 0, 1)),
        StageError(
            stage="s%",
            kernel="k",
            error='ValueError: "x" 100%',
            record_ids=record_ids_for_rows(0, 3, 1),
        ),
        Record(
            values=np.array([0.5, math.nan]),
            key=2,
            correlation_id=array_to_ids(record_ids_for_rows(0, 1, 1))[0],
        ),
    ],
    ids=["columns", "vectors", "key-column", "id-column", "bools", "empty", "error", "record"],
)
def test_jsonl_lines_of_each_kind_are_json_dumps_of_each_row(tmp_path: Path, msg: Any) -> None:
    assert written_jsonl(tmp_path, msg, label_rows) == one_line_per_row(msg, label_rows)


def test_npy_writer_rows_in_input_order_leave_out_records_without_result(tmp_path: Path) -> None:
    ids = record_ids_for_rows(0, 4, 1)
    w = ResultWriter(tmp_path / "o.npy", None, label=label_rows, row_of=row_indices, input_rows=5)
    w.write(RecordBatch(values=np.array([[3.0], [1.0]]), record_ids=ids[[3, 1]]))
    w.write(StageError(stage="s", kernel="s", error="E", record_ids=ids[[2]]))
    w.write(Record(values=[0.0], correlation_id=array_to_ids(ids)[0]))
    w.close()
    out = np.load(tmp_path / "o.npy")
    # No placeholder rows: record 2 failed, record 4 never came; both are listed.
    np.testing.assert_array_equal(out, [[0.0], [1.0], [3.0]])
    assert w.missing == 2
    np.testing.assert_array_equal(w.first_missing, [2, 4])
    assert (w.records, w.errors) == (4, 1)


def test_npy_writer_writes_the_path_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "results.out"
    w = ResultWriter(path, "npy", label=label_rows, row_of=row_indices, input_rows=1)
    w.write(RecordBatch(values=np.array([[2.0]]), record_ids=record_ids_for_rows(0, 1, 1)))
    w.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.out"]
    np.testing.assert_array_equal(np.load(path), [[2.0]])
    assert w.rows == 1


def test_npy_writer_refuses_results_of_two_shapes(tmp_path: Path) -> None:
    ids = record_ids_for_rows(0, 2, 1)
    w = ResultWriter(tmp_path / "o.npy", None, label=label_rows, row_of=row_indices, input_rows=2)
    w.write(RecordBatch(values=np.array([[1.0]]), record_ids=ids[:1], columns=("mean",)))
    w.write(RecordBatch(values=np.array([[1.0]]), record_ids=ids[1:], columns=("max",)))
    with pytest.raises(InputFileError, match=r"two shapes \(columns mean and columns max\)"):
        w.close()


def test_npy_writer_keeps_completion_order_for_new_records(tmp_path: Path) -> None:
    def row_of(ids: Any) -> Any:
        return np.full(len(ids), -1)

    w = ResultWriter(tmp_path / "o.npy", None, label=label_rows, row_of=row_of, input_rows=9)
    w.write(RecordBatch(values=np.array([[5.0], [6.0]]), record_ids=record_ids_for_rows(0, 2, 3)))
    w.close()
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), [[5.0], [6.0]])


def test_npy_writer_keeps_completion_order_when_a_record_has_two_results(
    tmp_path: Path,
) -> None:
    ids = record_ids_for_rows(0, 3, 1)
    w = ResultWriter(tmp_path / "o.npy", None, label=label_rows, row_of=row_indices, input_rows=3)
    w.write(RecordBatch(values=np.array([[2.0], [0.0]]), record_ids=ids[[2, 0]]))
    w.write(RecordBatch(values=np.array([[2.5]]), record_ids=ids[[2]]))
    w.close()
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), [[2.0], [0.0], [2.5]])
    assert w.missing == 0 and w.first_missing.tolist() == []


def test_npy_writer_names_the_first_hundred_missing_rows_of_results_in_order(
    tmp_path: Path,
) -> None:
    present = np.r_[0:50, 60:200, 250:260]  # ascending, as a run's results mostly come
    ids = record_ids_for_rows(0, 1000, 1)[present]
    w = ResultWriter(
        tmp_path / "o.npy", None, label=label_rows, row_of=row_indices, input_rows=1000
    )
    w.write(RecordBatch(values=present[:, None].astype(np.float64), record_ids=ids))
    w.close()
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy")[:, 0], present)
    assert w.missing == 1000 - len(present)
    expected = [r for r in range(1000) if r not in set(present.tolist())][:100]
    assert w.first_missing.dtype == np.int64 and w.first_missing.tolist() == expected


def test_input_record_error_to_dict() -> None:
    error = InputRecordError("f.csv", 3, "a", "bad")
    assert error.to_dict() == {"path": "f.csv", "line": 3, "field": "a", "problem": "bad"}


def test_a_big_file_is_read_in_packs_without_losing_order(tmp_path: Path) -> None:
    lines = [json.dumps({"values": [i, i + 0.5]}) for i in range(9000)]
    lines[5000] = '{"values": [1, "bad"]}'
    path = write(tmp_path, "big.jsonl", "\n".join(lines) + "\n")
    data = read_input(path)
    assert len(data) == 8999 and [e.line for e in data.errors] == [5001]
    expected = np.array([[i, i + 0.5] for i in range(9000) if i != 5000], dtype=np.float32)
    np.testing.assert_array_equal(data.values, expected)
    assert data.index[4999:5002].tolist() == [4999, 5001, 5002]


def test_a_big_integer_is_judged_as_written_not_as_float64_parsed_it(tmp_path: Path) -> None:
    path = write(tmp_path, "b.csv", f"a\n{2**53}\n{2**53 + 1}\n")
    data = read_input(path)
    assert data.values is not None and data.values.tolist() == [[2**53]]
    assert [(e.line, e.field) for e in data.errors] == [(3, "a")]
    assert f"{2**53 + 1} is not exact in float64" in data.errors[0].problem
