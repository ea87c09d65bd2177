"""Issue 13 item 2: Parquet and Arrow IPC in and out of ``pydotcompute run``, read and
written a row group or record batch at a time; both value layouts; dtypes kept; a
broken file's one-line error naming the row group or batch, with what was written kept
readable; the error that names the ``arrow`` extra when pyarrow is missing; and a
Parquet round trip of 1,000,000 records through the guide's pipeline in bounded memory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_helpers import GUIDE, one_error_line, pydotcompute
from pydotcompute.cli import (
    InputFileError,
    ResultWriter,
    TableInput,
    TableWriter,
    read_input,
)
from pydotcompute.stage import RecordBatch, StageError, record_ids_for_rows, row_indices

RNG = np.random.default_rng(13)


def guide_means(values: np.ndarray) -> np.ndarray:
    """The guide's result for each row: min-max normalized, then the mean (in float64)."""
    v = values.astype(np.float64)
    low, high = v.min(axis=1, keepdims=True), v.max(axis=1, keepdims=True)
    return ((v - low) / (high - low)).mean(axis=1)


def list_table(values: np.ndarray, **extra: Any) -> pa.Table:
    """``values`` as one fixed-size-list column ``values`` (plus ``extra`` columns first)."""
    flat = pa.array(values.reshape(-1))
    return pa.table({**extra, "values": pa.FixedSizeListArray.from_arrays(flat, values.shape[1])})


def column_table(values: np.ndarray, **extra: Any) -> pa.Table:
    """``values`` as one column per value, ``v0`` .. ``vN``."""
    return pa.table({**extra, **{f"v{j}": values[:, j] for j in range(values.shape[1])}})


def write_table(table: pa.Table, path: Path, rows_per_piece: int = 1000) -> Path:
    """``table`` as Parquet (row groups of ``rows_per_piece``), an Arrow IPC file or an
    Arrow IPC stream (record batches of ``rows_per_piece``), by ``path``'s extension."""
    if path.suffix == ".parquet":
        pq.write_table(table, path, row_group_size=rows_per_piece, write_page_checksum=True)
        return path
    batches = table.to_batches(max_chunksize=rows_per_piece)
    opener = pa.ipc.new_file if path.suffix == ".arrow" else pa.ipc.new_stream
    with pa.OSFile(str(path), "wb") as sink, opener(sink, table.schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return path


def read_back(path: Path) -> pa.Table:
    if path.suffix == ".parquet":
        return pq.read_table(path)
    with pa.OSFile(str(path), "rb") as source:
        if path.suffix == ".arrow":
            return pa.ipc.open_file(source).read_all()
        return pa.ipc.open_stream(source).read_all()


def by_id(table: pa.Table, column: str) -> dict[Any, Any]:
    return dict(zip(table["id"].to_pylist(), table[column].to_pylist(), strict=True))


# -- round trips through the command --------------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "source", "target", "mode"),
    [
        ("list", "parquet", "parquet", "columnar"),
        ("columns", "parquet", "arrow", "columnar"),
        ("list", "arrow", "arrows", "columnar"),
        ("columns", "arrows", "parquet", "columnar"),
        ("list", "parquet", "arrow", "per-message"),
    ],
)
def test_round_trip_keeps_every_record_its_id_and_its_result(
    tmp_path: Path, layout: str, source: str, target: str, mode: str
) -> None:
    values = RNG.random((2500, 6))
    ids = [f"rec-{i}" for i in range(len(values))]
    table = (list_table if layout == "list" else column_table)(values, id=ids)
    given = write_table(table, tmp_path / f"in.{source}", rows_per_piece=700)
    out = tmp_path / f"out.{target}"
    done = pydotcompute("run", GUIDE, "-i", str(given), "-o", str(out), "--mode", mode, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["input"]["records"] == len(values)
    assert report["results"] == len(values)
    result = read_back(out)
    assert result.num_rows == len(values)
    assert result.column_names == ["id", "mean", "error", "stage"]
    assert result["id"].type == pa.string()
    means = by_id(result, "mean")
    np.testing.assert_allclose([means[i] for i in ids], guide_means(values), rtol=1e-12)
    assert result["error"].null_count == len(values)  # no record failed


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_values_dtype_is_kept_in_and_out(tmp_path: Path, dtype: str) -> None:
    values = RNG.random((300, 4)).astype(dtype)
    given = write_table(list_table(values), tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"
    done = pydotcompute("run", GUIDE, "-i", str(given), "-o", str(out))
    assert done.returncode == 0, done.stderr
    result = pq.read_table(out)
    assert result["mean"].type == pa.from_numpy_dtype(np.dtype(dtype))
    # No id column: a record is named by its row in the file, an integer.
    assert result["id"].type == pa.int64()
    got = by_id(result, "mean")
    expected = guide_means(values)
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose([got[i] for i in range(300)], expected, rtol=tolerance)


def test_a_vector_result_is_one_fixed_size_list_column(tmp_path: Path) -> None:
    pipeline = tmp_path / "norm.toml"
    pipeline.write_text('[pipeline]\nname = "norm"\n\n[stages.norm]\nstage = "preprocess"\n')
    values = RNG.random((50, 5))
    given = write_table(list_table(values), tmp_path / "in.arrow")
    out = tmp_path / "out.parquet"
    done = pydotcompute("run", str(pipeline), "-i", str(given), "-o", str(out))
    assert done.returncode == 0, done.stderr
    result = pq.read_table(out)
    field = result.schema.field("normalized")
    assert field.type == pa.list_(pa.float64(), 5)
    rows = dict(zip(result["id"].to_pylist(), result["normalized"].to_pylist(), strict=True))
    low, high = values.min(axis=1, keepdims=True), values.max(axis=1, keepdims=True)
    np.testing.assert_allclose([rows[i] for i in range(50)], (values - low) / (high - low))


def test_integer_ids_and_keys_travel_with_their_records(tmp_path: Path) -> None:
    values = RNG.random((40, 3))
    ids = np.arange(1000, 1040, dtype=np.int64)
    keys = np.arange(40, dtype=np.int64) % 3
    given = write_table(column_table(values, ID=ids, key=keys), tmp_path / "in.parquet")
    out = tmp_path / "out.arrows"
    done = pydotcompute("run", GUIDE, "-i", str(given), "-o", str(out))
    assert done.returncode == 0, done.stderr
    result = read_back(out)
    assert result["id"].type == pa.int64()
    assert sorted(result["id"].to_pylist()) == ids.tolist()
    assert by_id(result, "key") == dict(zip(ids.tolist(), keys.tolist(), strict=True))


def test_a_results_table_reads_back_as_input(tmp_path: Path) -> None:
    """Its own ``error``/``stage`` text columns are not values: one pipeline's output
    feeds the next."""
    values = RNG.random((100, 4))
    first = tmp_path / "first.parquet"
    given = write_table(list_table(values), tmp_path / "in.parquet")
    assert pydotcompute("run", GUIDE, "-i", str(given), "-o", str(first)).returncode == 0
    again = tmp_path / "again.jsonl"
    done = pydotcompute("run", GUIDE, "-i", str(first), "-o", str(again))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in again.read_text().splitlines()]
    assert len(lines) == 100 and {line["mean"] for line in lines} == {0.0}  # one value each


# -- bad records and bad files ------------------------------------------------------------


def test_bad_records_are_skipped_and_named_by_their_row(tmp_path: Path) -> None:
    """A float32 pipeline: a float64 value beyond float32 is a bad record; a null list
    too; every other record is processed and named by its own row."""
    pipeline = tmp_path / "f32.toml"
    pipeline.write_text(
        Path(GUIDE).read_text().replace('name = "guide"', 'name = "guide"\ndtype = "float32"')
    )
    values = RNG.random((30, 4))
    values[7, 2] = 1e300
    table = list_table(values)
    lists = table["values"].to_pylist()
    lists[12] = None
    table = pa.table({"values": pa.array(lists, type=pa.list_(pa.float64(), 4))})
    given = write_table(table, tmp_path / "in.parquet", rows_per_piece=10)
    out = tmp_path / "out.jsonl"
    done = pydotcompute("run", str(pipeline), "-i", str(given), "-o", str(out), "--json")
    assert done.returncode == 1, done.stderr
    assert (
        f"bad record skipped: {given}:8: field 'values[2]': 1e+300 overflows float32" in done.stderr
    )
    assert f"bad record skipped: {given}:13: field 'values': null" in done.stderr
    report = json.loads(done.stdout)
    assert report["input"]["bad_records"] == 2
    rows = {
        json.loads(line)["id"]: json.loads(line)["mean"] for line in out.read_text().splitlines()
    }
    assert sorted(rows) == [i for i in range(30) if i not in (7, 12)]  # rows after them too
    good = [i for i in range(30) if i not in (7, 12)]
    np.testing.assert_allclose([rows[i] for i in good], guide_means(values[good]), rtol=1e-5)


def test_an_npy_output_of_a_streamed_input_counts_good_records_only(tmp_path: Path) -> None:
    """Bad records are reported as bad, not as input records without a result."""
    values = RNG.random((50, 3))
    values[[4, 40], 0] = np.nan  # NaN is a value: not bad
    table = list_table(values)
    lists = table["values"].to_pylist()
    lists[10] = lists[33] = None
    table = pa.table({"values": pa.array(lists, type=pa.list_(pa.float64(), 3))})
    given = write_table(table, tmp_path / "in.parquet", rows_per_piece=20)
    out = tmp_path / "out.npy"
    done = pydotcompute("run", GUIDE, "-i", str(given), "-o", str(out), "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["input"]["records"] == 48 and report["input"]["bad_records"] == 2
    assert report["output_missing"] == 0 and report["output_missing_ids"] == []
    good = [i for i in range(50) if i not in (10, 33)]
    np.testing.assert_allclose(np.load(out)[:, 0], guide_means(values[good]))


def test_null_numbers_are_nan_and_null_keys_are_bad_where_keys_route(tmp_path: Path) -> None:
    table = pa.table(
        {
            "key": pa.array([1, None, 3, 4], type=pa.int32()),
            "a": pa.array([1, 2, None, 4], type=pa.int64()),
            "b": pa.array([0.5, 1.5, 2.5, None], type=pa.float32()),
        }
    )
    given = write_table(table, tmp_path / "in.arrow")
    (piece,) = TableInput(given, "arrow").pieces()
    assert piece.values.dtype == np.float64 and piece.keys is None  # a key is missing
    np.testing.assert_array_equal(piece.values, [[1, 0.5], [2, 1.5], [np.nan, 2.5], [4, np.nan]])
    keyed = TableInput(given, "arrow", require_key=True)
    (piece,) = keyed.pieces()
    assert piece.keys.tolist() == [1, 3, 4] and len(piece) == 3
    assert [str(e) for e in keyed.errors] == [
        f"{given}:2: field 'key': missing; this pipeline routes records by key"
    ]
    no_key = write_table(pa.table({"a": [1.0]}), tmp_path / "no_key.parquet")
    with pytest.raises(InputFileError, match="has no 'key' column, and this pipeline routes"):
        TableInput(no_key, "parquet", require_key=True)


def test_a_key_beyond_int64_is_a_bad_record(tmp_path: Path) -> None:
    table = pa.table({"key": pa.array([1, 2**63, 3], type=pa.uint64()), "a": [1.0, 2.0, 3.0]})
    given = write_table(table, tmp_path / "in.parquet")
    reader = TableInput(given)
    (piece,) = reader.pieces()
    assert piece.keys.tolist() == [1, 3] and piece.values.tolist() == [[1.0], [3.0]]
    assert [str(e) for e in reader.errors] == [
        f"{given}:2: field 'key': 9223372036854775808 does not fit int64"
    ]


def test_lists_of_any_length_need_per_message_mode(tmp_path: Path) -> None:
    rows = [[1.0, 2.0, 4.0], [3.0, 1.0], [5.0, 6.0, 9.0], [2.0, 0.0, 1.0, 1.0]]
    given = tmp_path / "in.arrows"
    write_table(pa.table({"values": pa.array(rows, type=pa.list_(pa.float64()))}), given)
    out = tmp_path / "out.jsonl"
    columnar = pydotcompute("run", GUIDE, "-i", str(given), "-o", str(out))
    assert columnar.returncode == 1
    assert "field 'values': has 2 values, but the records before it have 3" in columnar.stderr
    assert {json.loads(line)["id"] for line in out.read_text().splitlines()} == {0, 2}
    each = pydotcompute("run", GUIDE, "-i", str(given), "-o", str(out), "--mode", "per-message")
    assert each.returncode == 0, each.stderr
    means = {
        json.loads(line)["id"]: json.loads(line)["mean"] for line in out.read_text().splitlines()
    }
    expected = {i: guide_means(np.array([row]))[0] for i, row in enumerate(rows)}
    assert means == pytest.approx(expected)


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        (pa.table({"values": [[1.0]], "label": ["x"]}), "not both, nor two lists"),
        (pa.table({"a": [1.0], "name": ["x"]}), "column 'name' holds string"),
        (
            pa.table({"id": [1.5], "a": [1.0]}),
            "column 'id' holds double; ids are strings or integers",
        ),
        (pa.table({"id": ["a"]}), "has no value column"),
        (
            pa.table({"values": [["x"]]}),
            "column 'values' holds list<element: string>; the values must be numbers",
        ),
        (pa.table({"a": pa.array([], type=pa.float64())}), "the file holds no records"),
    ],
)
def test_columns_that_hold_no_values_are_refused_before_the_run(
    tmp_path: Path, table: pa.Table, problem: str
) -> None:
    given = write_table(table, tmp_path / "in.parquet")
    line = one_error_line(
        pydotcompute("run", GUIDE, "-i", str(given), "-o", str(tmp_path / "o.jsonl"))
    )
    assert line.startswith(f"error: {given}: ") and problem in line


def corrupt_row_group(path: Path, group: int) -> None:
    """Overwrite bytes in the middle of row group ``group``'s data pages (the page
    checksums written with the file catch it)."""
    column = pq.ParquetFile(path).metadata.row_group(group).column(0)
    start = column.dictionary_page_offset or column.data_page_offset
    end = start + column.total_compressed_size
    with open(path, "r+b") as handle:
        handle.seek((column.data_page_offset + end) // 2)
        handle.write(b"\xff" * 64)


def test_a_corrupt_row_group_stops_the_run_and_keeps_what_was_written(tmp_path: Path) -> None:
    values = RNG.random((5000, 8))
    given = write_table(list_table(values), tmp_path / "in.parquet", rows_per_piece=1000)
    corrupt_row_group(given, 3)
    out = tmp_path / "out.parquet"
    line = one_error_line(pydotcompute("run", GUIDE, "-i", str(given), "-o", str(out)))
    assert line.startswith(
        f"error: {given}: row group 3 of 5 (counting from 0; its first record is row 3,001 of the file) cannot be read: "
    )
    assert line.endswith(f"; the run stopped there; the results before it are in {out}")
    result = pq.read_table(out)  # a whole file: its footer was written
    assert sorted(result["id"].to_pylist()) == list(range(3000))
    means = by_id(result, "mean")
    np.testing.assert_allclose([means[i] for i in range(3000)], guide_means(values[:3000]))


def test_a_truncated_parquet_file_is_refused_before_the_run(tmp_path: Path) -> None:
    given = write_table(list_table(RNG.random((100, 4))), tmp_path / "in.parquet")
    data = given.read_bytes()
    given.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.parquet"
    line = one_error_line(pydotcompute("run", GUIDE, "-i", str(given), "-o", str(out)))
    assert line.startswith(f"error: {given}: not a readable Parquet file: ")
    assert not out.exists()  # nothing ran, nothing was written


def test_a_truncated_arrow_stream_names_its_broken_batch(tmp_path: Path) -> None:
    given = write_table(
        list_table(RNG.random((1000, 4))), tmp_path / "in.arrows", rows_per_piece=100
    )
    data = given.read_bytes()
    given.write_bytes(data[: len(data) * 55 // 100])  # into the middle of batch 5
    line = one_error_line(
        pydotcompute("run", GUIDE, "-i", str(given), "-o", str(tmp_path / "o.jsonl"))
    )
    assert (
        f"error: {given}: record batch 5 (counting from 0; its first record is row 501 of the file) cannot be read: "
        in line
    )


def test_a_file_that_is_not_arrow_is_refused(tmp_path: Path) -> None:
    given = tmp_path / "in.arrow"
    given.write_text("id,a\n1,2\n")
    line = one_error_line(pydotcompute("run", GUIDE, "-i", str(given)))
    assert line.startswith(f"error: {given}: not a readable Arrow IPC file: ")


def test_results_of_two_shapes_stop_the_run_with_one_line_and_a_readable_table(
    tmp_path: Path,
) -> None:
    """Two sinks with different statistics cannot share one table's columns: the run
    stops when the second kind arrives, and what was written stays readable."""
    pipeline = tmp_path / "two_sinks.toml"
    pipeline.write_text(
        '[pipeline]\nname = "two_sinks"\n\n[stages.norm]\nstage = "preprocess"\n\n'
        '[stages.a]\nstage = "compute"\ninputs = ["norm"]\nparams = { stats = ["mean"] }\n\n'
        '[stages.b]\nstage = "compute"\ninputs = ["norm"]\n'
        'params = { stats = ["min", "max", "std"] }\n'
    )
    given = write_table(list_table(RNG.random((3000, 4))), tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"
    line = one_error_line(pydotcompute("run", str(pipeline), "-i", str(given), "-o", str(out)))
    assert line.startswith(f"error: {out}: results of two shapes (columns ")
    assert line.endswith("cannot share one table: write .jsonl instead; the run was stopped")
    written = pq.read_table(out)  # readable: its footer was written
    assert written.column_names in (
        ["id", "mean", "error", "stage"],
        ["id", "min", "max", "std", "error", "stage"],
    )


# -- interrupted, or the disk full -----------------------------------------------------------


def started(out: Path, *argv: str) -> subprocess.Popen[str]:
    """The command in the background, once ``out`` holds its first row group."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pydotcompute.cli", *argv, "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    # The magic bytes, then the first group of 64 Ki results (a few hundred KiB).
    while not (out.exists() and out.stat().st_size > 100_000):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no row group written within 60 s"
        time.sleep(0.02)
    return proc


LONG_RUN = ("run", GUIDE, "--synthetic", "100000000", "--width", "4", "--json")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("fmt", ["parquet", "arrows"])
def test_sigint_writes_what_was_computed_and_the_footer(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"r.{fmt}"
    proc = started(out, *LONG_RUN, "--drain-timeout", "300")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    report = json.loads(stdout)
    assert report["interrupted"] and report["results"] == report["records_fed"]
    result = read_back(out)
    assert result.num_rows == report["results"] > 0
    ids = np.sort(result["id"].to_numpy())
    np.testing.assert_array_equal(ids, np.arange(len(ids)))  # every record fed, once


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_second_signal_still_leaves_a_readable_parquet_file(tmp_path: Path) -> None:
    pipeline = tmp_path / "slow_drain.toml"  # deep queues: the graceful stop takes a while
    pipeline.write_text(
        '[pipeline]\nname = "slow-drain"\nqueue_size = 100000\n\n[stages.preprocess]\n\n'
        '[stages.compute]\nparams = { stats = ["mean"] }\n'
    )
    out = tmp_path / "r.parquet"
    argv = ("run", str(pipeline), "--synthetic", "100000000", "--width", "4")
    proc = started(out, *argv, "--mode", "per-message", "--batch", "512")
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGTERM)  # right behind: it lands inside the graceful stop
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode in (130, 143), stderr
    assert "again: exiting at once" in stderr and "Traceback" not in stderr
    assert f"{out}: the results written so far stay" in stderr
    assert pq.read_table(out).num_rows >= 1 << 16  # the footer was written


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_a_full_disk_on_a_table_output_is_one_line(fmt: str) -> None:
    done = pydotcompute(
        "run", GUIDE, "--synthetic", "200000", "-o", "/dev/full", "--output-format", fmt
    )
    line = one_error_line(done)
    assert line.startswith("error: /dev/full: cannot write: ")
    assert "No space left on device" in line


# -- pyarrow missing ----------------------------------------------------------------------


def run_without_pyarrow(*argv: str) -> subprocess.CompletedProcess[str]:
    """The command in a process where ``import pyarrow`` fails, as when it is not
    installed (a None entry in sys.modules makes the import raise ImportError)."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["pyarrow"] = None
        from pydotcompute.cli import main
        sys.exit(main(sys.argv[1:]))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_pyarrow_the_error_names_the_extra(tmp_path: Path) -> None:
    given = write_table(list_table(RNG.random((10, 3))), tmp_path / "in.parquet")
    line = one_error_line(run_without_pyarrow("run", GUIDE, "-i", str(given)))
    assert line.startswith(f"error: {given}: Parquet files need pyarrow, which is not installed")
    assert line.endswith("pip install 'pydotcompute[arrow]'")
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"values": [1, 2, 3]}\n')
    out = tmp_path / "out.arrow"
    line = one_error_line(run_without_pyarrow("run", GUIDE, "-i", str(jsonl), "-o", str(out)))
    assert line.startswith(f"error: {out}: Arrow IPC files need pyarrow")
    assert "pydotcompute[arrow]" in line
    # The other formats do not need it.
    done = run_without_pyarrow("run", GUIDE, "-i", str(jsonl), "-o", str(tmp_path / "o.jsonl"))
    assert done.returncode == 0, done.stderr


# -- from Python ----------------------------------------------------------------------------


def test_a_fixed_size_list_of_floats_reaches_numpy_without_a_copy(tmp_path: Path) -> None:
    values = RNG.random((3000, 4)).astype(np.float32)
    given = write_table(list_table(values), tmp_path / "in.arrow", rows_per_piece=1000)
    pieces = list(TableInput(given, "arrow").pieces())
    assert [(p.start, len(p)) for p in pieces] == [(0, 1000), (1000, 1000), (2000, 1000)]
    for piece in pieces:
        assert isinstance(piece.values, np.ndarray) and piece.values.dtype == np.float32
        # Arrow's own (read-only) memory, not a NumPy copy.
        assert not piece.values.flags.writeable and not piece.values.flags.owndata
    np.testing.assert_array_equal(np.concatenate([p.values for p in pieces]), values)
    # One column per value is stacked into rows: a copy, in NumPy's memory.
    columns = write_table(column_table(values), tmp_path / "cols.arrow", rows_per_piece=1000)
    (first, *_) = TableInput(columns, "arrow").pieces()
    assert first.values.flags.writeable  # NumPy's own memory


def test_read_input_reads_a_whole_table_with_ids_and_bad_rows(tmp_path: Path) -> None:
    values = RNG.random((6, 2))
    values[1, 0] = np.inf  # a value float64 holds: not a bad record
    table = list_table(values, id=["a", None, "c", "d", "e", "f"])
    lists = table["values"].to_pylist()
    lists[3] = None
    table = table.set_column(1, "values", pa.array(lists, type=pa.list_(pa.float64(), 2)))
    given = write_table(table, tmp_path / "in.parquet", rows_per_piece=4)
    data = read_input(given)
    assert data.index.tolist() == [0, 1, 2, 4, 5]
    assert [data.label(i) for i in range(5)] == ["a", 1, "c", "e", "f"]
    np.testing.assert_array_equal(data.values, values[[0, 1, 2, 4, 5]])
    assert [str(e) for e in data.errors] == [
        f"{given}:4: field 'values': null; a record needs a list of values"
    ]


def test_the_format_comes_from_the_extension_unless_given(tmp_path: Path) -> None:
    stream = write_table(list_table(RNG.random((5, 2))), tmp_path / "in.arrows")
    assert TableInput(stream).format == "arrows" and TableInput(stream).count == 5
    renamed = stream.rename(tmp_path / "in.data")
    with pytest.raises(InputFileError, match=r"cannot tell the format from the extension '\.data'"):
        TableInput(renamed)
    assert TableInput(renamed, "arrow").count == 5  # an IPC stream, told by its first bytes
    with pytest.raises(InputFileError, match="format 'csv' is not supported here"):
        TableInput(renamed, "csv")


def test_labels_name_file_rows_after_skipped_records(tmp_path: Path) -> None:
    """Good records are numbered without the bad ones; their labels are file rows."""
    pipeline_dtype = "float16"
    values = RNG.random((20, 2))
    values[[0, 5, 6, 19], 1] = 1e6  # beyond float16
    given = write_table(list_table(values), tmp_path / "in.arrow", rows_per_piece=7)
    table = TableInput(given, "arrow", dtype=pipeline_dtype)
    kept = np.concatenate([p.values for p in table.pieces()])
    assert kept.dtype == np.float16 and len(kept) == 16
    assert [e.line for e in table.errors] == [1, 6, 7, 20]
    good = [i for i in range(20) if i not in (0, 5, 6, 19)]
    assert table.labels(np.arange(16)) == good
    assert table.label(4) == 7


def test_the_writer_keeps_errors_and_refuses_a_second_shape(tmp_path: Path) -> None:
    run = 77
    ids = record_ids_for_rows(0, 6, run)

    def label(arr: Any) -> list[Any]:
        return row_indices(np.asarray(arr, dtype=np.uint64).reshape(-1, 2)).tolist()

    out = tmp_path / "out.parquet"
    writer = TableWriter(out, "parquet", label=label, group_rows=2)
    writer.write(
        StageError(stage="compute", kernel="k", error="ValueError: no", record_ids=ids[:1])
    )
    writer.write(RecordBatch(values=np.ones((3, 2)), record_ids=ids[1:4], columns=("mean", "max")))
    with pytest.raises(
        InputFileError,
        match=r"results of two shapes .*columns mean, max, float64.*'values' of 4 values",
    ):
        writer.write(RecordBatch(values=np.ones((2, 4)), record_ids=ids[4:6]))
    writer.close()
    writer.close()  # idempotent
    result = pq.read_table(out)
    assert result.column_names == ["id", "mean", "max", "error", "stage"]
    assert result.to_pydict() == {
        "id": [0, 1, 2, 3],
        "mean": [None, 1.0, 1.0, 1.0],
        "max": [None, 1.0, 1.0, 1.0],
        "error": ["ValueError: no", None, None, None],
        "stage": ["compute", None, None, None],
    }
    assert pq.ParquetFile(out).metadata.num_row_groups == 2  # groups of 2 rows, at least


def test_a_run_without_results_writes_an_empty_readable_table(tmp_path: Path) -> None:
    out = tmp_path / "out.arrow"
    writer = ResultWriter(out, None, label=lambda ids: [], row_of=lambda ids: ids, input_rows=0)
    writer.close()
    assert read_back(out).num_rows == 0


def test_an_unwritable_output_fails_before_the_run(tmp_path: Path) -> None:
    given = write_table(list_table(RNG.random((10, 3))), tmp_path / "in.parquet")
    out = tmp_path / "missing-dir" / "out.parquet"
    line = one_error_line(pydotcompute("run", GUIDE, "-i", str(given), "-o", str(out)))
    assert str(out) in line


# -- 1,000,000 records in bounded memory ---------------------------------------------------

MILLION = 1_000_000
WIDTH = 512  # float32: 2,048,000,000 bytes of values, 1.9 GiB
GROUP = 1 << 16


@pytest.fixture(scope="module")
def million(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """1,000,000 records of WIDTH float32 as Parquet, row groups of 64 Ki rows, and the
    guide's result of each. One 64 Ki-row block serves every row group (writing is the
    slow part); in it row ``i``'s values are ``(j + i % 89) % 97``."""
    path = tmp_path_factory.mktemp("million") / "million.parquet"
    pattern = (np.arange(WIDTH)[None, :] + np.arange(GROUP)[:, None] % 89) % 97
    values = pa.array(pattern.astype(np.float32).reshape(-1))
    block = pa.FixedSizeListArray.from_arrays(values, WIDTH)
    schema = pa.schema([("values", block.type)])
    batch = pa.record_batch([block], schema=schema)
    # Snappy: the repeating values shrink to ~110 MB on disk (2 GiB uncompressed), and
    # it writes faster than no compression; decoded, they are 1.9 GiB again.
    options = {"compression": "snappy", "use_dictionary": False, "write_statistics": False}
    with pq.ParquetWriter(path, schema, **options) as writer:
        for lo in range(0, MILLION, GROUP):
            writer.write_batch(batch.slice(0, min(GROUP, MILLION - lo)))
    means = guide_means(pattern[:89].astype(np.float32))
    return path, means[np.arange(MILLION) % GROUP % 89]


def peak_rss(command: list[str], stdout: Path) -> int:
    """Run ``command`` (its stdout into ``stdout``) and return its peak RSS in bytes.

    It runs as the only child of a small watcher process, and the watcher reports its
    children's ``ru_maxrss``: a child's peak counts what its parent held when it was
    forked, so a child of this test process would carry this process's size (the
    fixture's arrays, every earlier test) instead of its own.
    """
    watcher = (
        "import resource, subprocess, sys\n"
        "with open(sys.argv[1], 'w') as out:\n"
        "    status = subprocess.call(sys.argv[2:], stdout=out)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", watcher, str(stdout), *command],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout)  # ru_maxrss is in KiB on Linux


@pytest.mark.timeout(600)  # writing and reading 1.9 GiB of Parquet on 2 busy cores
def test_a_million_records_round_trip_through_parquet_in_bounded_memory(
    tmp_path: Path, million: tuple[Path, np.ndarray]
) -> None:
    given, expected = million
    out = tmp_path / "million_out.parquet"
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pydotcompute.cli", "run", GUIDE, "-i", str(given)]
    peak = peak_rss([*command, "-o", str(out), "--json"], report)
    data_bytes = MILLION * WIDTH * 4
    # The bound. Reading the file whole would hold all 1.9 GiB of values (and
    # pq.read_table more). The run holds: the interpreter with numpy and pyarrow
    # (~80 MiB); the reader's pieces of ~8 MiB (a few at once, and Arrow's allocator
    # keeps what it freed); what the pipeline keeps in flight, whatever the input (its
    # feeder keeps up to 256 MiB of values per source worker ahead of what the worker
    # took in, and a worker takes up to 1,024 batches at once: measured ~0.9 GiB with
    # --synthetic input of this shape on the 2-core VM); and the output's row group of
    # up to 64 Ki results. Measured peak there: 1.1-1.25 GiB. Three quarters of the
    # data leaves room for the machine's noise, and fails if the file is held whole.
    assert peak < data_bytes * 3 // 4, f"peak RSS {peak / 2**30:.2f} GiB"
    summary = json.loads(report.read_text())
    assert summary["input"]["records"] == MILLION and summary["results"] == MILLION
    result = pq.ParquetFile(out)
    assert result.metadata.num_rows == MILLION
    assert result.metadata.num_row_groups >= MILLION // GROUP  # written as it came
    got = np.full(MILLION, np.nan)
    for batch in result.iter_batches(columns=["id", "mean"]):
        got[batch.column(0).to_numpy()] = batch.column(1).to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.mark.timeout(600)
def test_the_reader_alone_holds_a_few_pieces_of_a_big_file(
    tmp_path: Path, million: tuple[Path, np.ndarray]
) -> None:
    """What the reader holds is bounded by its piece size: reading the first 300,000
    records (0.57 GiB of values) of the big file through :meth:`TableInput.pieces`
    peaks at the interpreter's size plus a few pieces."""
    given, _ = million
    code = (
        "import sys\n"
        "from pydotcompute.cli import TableInput\n"
        "read = 0\n"
        "for piece in TableInput(sys.argv[1], 'parquet').pieces():\n"
        "    assert piece.start == read\n"
        "    read += len(piece)\n"
        "    if read >= 300_000:\n"
        "        break\n"
        "print(read)\n"
    )
    counted = tmp_path / "count.txt"
    peak = peak_rss([sys.executable, "-c", code, str(given)], counted)
    assert int(counted.read_text()) >= 300_000
    # ~80 MiB of interpreter, numpy and pyarrow; pieces of 8 MiB, a few alive at once
    # (the one read, the one decoded, Arrow's allocator's cache): measured 0.18 GiB.
    assert peak < 320 << 20, f"peak RSS {peak / 2**20:.0f} MiB"


def test_output_rows_of_a_big_run_follow_group_size(tmp_path: Path) -> None:
    """Many small results are written in row groups of at most 64 Ki rows."""
    values = RNG.random((70_000, 2)).astype(np.float32)
    given = write_table(list_table(values), tmp_path / "in.parquet", rows_per_piece=30_000)
    out = tmp_path / "out.parquet"
    done = pydotcompute("run", GUIDE, "-i", str(given), "-o", str(out))
    assert done.returncode == 0, done.stderr
    meta = pq.ParquetFile(out).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(sizes) == 70_000 and max(sizes) <= 1 << 16 and len(sizes) >= 2
    assert os.path.getsize(out) > 0
