"""Issue 14, the CLI's inputs, through the real command: shapes (``.npy`` must be 2-D
with a column and a row; empty input is status 2 in every format), keys (a keyed
pipeline's record without a key is a bad input record), widths (per-message mode takes
any length; columnar mode says why it needs one); precision is test_cli_dtypes.py's.
Then a property: random bytes and random shapes never end in a traceback."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import GUIDE, ROOT, one_error_line, pydotcompute
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pydotcompute.backend import NumpyBackend
from pydotcompute.cli import main

KEYED = str(ROOT / "examples" / "keyed.toml")


def bad_records(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("bad record skipped")]


# -- 8: shapes and empty input -------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "words"),
    [
        ((5,), "shape (5,); a 2-D (records, width) array"),
        ((3, 0), "shape (3, 0); a 2-D (records, width) array with at least one column"),
        ((2, 2, 2), "shape (2, 2, 2)"),
        ((0, 5), "holds no records (shape (0, 5))"),
    ],
)
def test_npy_of_the_wrong_shape_is_refused(
    tmp_path: Path, shape: tuple[int, ...], words: str
) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.zeros(shape, dtype=np.float32))
    line = one_error_line(pydotcompute("run", GUIDE, "-i", str(path)))
    assert str(path) in line and words in line


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.csv", "blank.jsonl", "empty.npy"])
def test_empty_input_is_status_2_in_every_format(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".npy"):
        np.save(path, np.zeros((0, 4), dtype=np.float32))
    else:
        path.write_text("\n\n" if name.startswith("blank") else "")
    line = one_error_line(pydotcompute("run", GUIDE, "-i", str(path)))
    assert str(path) in line and "no records" in line


# -- 6: keys -------------------------------------------------------------------------------


def test_a_record_without_a_key_is_a_bad_input_record(tmp_path: Path) -> None:
    src = tmp_path / "k.jsonl"
    lines = [json.dumps({"values": [i, i + 1.0, 2.0], "key": i}) for i in range(6)]
    lines[3] = json.dumps({"values": [1.0, 2.0, 3.0]})
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    done = pydotcompute("run", KEYED, "-i", str(src), "-o", str(out), "--json")
    assert done.returncode == 1, done.stderr
    assert bad_records(done) == [
        f"bad record skipped: {src}:4: field 'key': missing; "
        "this pipeline routes records by their integer key"
    ]
    report = json.loads(done.stdout)
    assert report["stage_errors"] == 0
    assert report["input"]["bad_records"] == 1
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all("error" not in r for r in rows)
    assert sum(r["count"] for r in rows) == 5  # the aggregator's sums cover every good record


# -- 7: widths -----------------------------------------------------------------------------


def test_per_message_mode_takes_records_of_any_length(tmp_path: Path) -> None:
    src = tmp_path / "r.jsonl"
    rows = [[1.0, 2.0], [1.0, 2.0, 3.0, 7.0], [5.0, 0.0, 10.0]]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    done = pydotcompute("run", GUIDE, "-i", str(src), "-o", str(out), "--mode", "per-message")
    assert done.returncode == 0, done.stderr
    means = {r["id"]: r["mean"] for r in map(json.loads, out.read_text().splitlines())}
    expected = [np.mean((np.array(r) - min(r)) / (max(r) - min(r))) for r in rows]
    assert sorted(means) == [0, 1, 2]
    np.testing.assert_allclose([means[i] for i in range(3)], expected, rtol=1e-6)


def test_columnar_mode_names_the_line_and_both_widths(tmp_path: Path) -> None:
    src = tmp_path / "r.jsonl"
    src.write_text("[1, 2]\n[1, 2, 3]\n[4, 5]\n")
    done = pydotcompute("run", GUIDE, "-i", str(src), "--mode", "columnar", "--json")
    assert done.returncode == 1, done.stderr
    (line,) = bad_records(done)
    assert f"{src}:2: field 'values': has 3 values, but the records before it have 2" in line
    assert "columnar mode needs one width" in line and "--mode per-message" in line
    assert json.loads(done.stdout)["records_fed"] == 2


# -- property: no input ends in a traceback ------------------------------------------------


REF = NumpyBackend()


def run_in_process(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(["run", GUIDE, *argv, "--no-progress"])
    return status, err.getvalue()


def check_outcome(status: int, stderr: str) -> None:
    assert "Traceback" not in stderr
    if status == 2:
        assert len(stderr.splitlines()) == 1, stderr
        assert stderr.startswith("error: ")
    else:
        assert status in (0, 1), (status, stderr)
        assert all(line.startswith(("bad record", "...")) for line in stderr.splitlines())


_PROPERTY = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _npy_bytes(array: Any) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@_PROPERTY
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".jsonl", ".csv", ".npy"]))
@example(data=_npy_bytes(np.ones((50, 3)))[:-40], suffix=".npy")  # cut short
@example(data=b'{"values": [1, 2]}\n\xff\xfe\n', suffix=".jsonl")  # not UTF-8
@example(data=b"a,b\n1,\x00\n", suffix=".csv")
@example(data=b"[" * 5000, suffix=".jsonl")  # nested past the recursion limit
def test_random_bytes_never_end_in_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, suffix: str
) -> None:
    path = tmp_path_factory.mktemp("bytes") / f"in{suffix}"
    path.write_bytes(data)
    check_outcome(*run_in_process("-i", str(path)))


@_PROPERTY
@given(
    array=hnp.arrays(
        dtype=st.sampled_from([np.float16, np.float32, np.float64, np.int64, np.uint8, np.bool_]),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
        elements={"allow_nan": True, "allow_infinity": True},
    ),
    mode=st.sampled_from(["columnar", "per-message"]),
)
@example(array=np.array([[1.0, 2.0, 4.0], [3, 3, 3], [np.nan, 0, 1]]), mode="per-message")
@example(array=np.array([[16777217, 16777219], [1, 5]], dtype=np.int64), mode="columnar")
def test_random_npy_shapes_end_in_one_line_or_their_computed_results(
    tmp_path_factory: pytest.TempPathFactory, array: Any, mode: str
) -> None:
    folder = tmp_path_factory.mktemp("shapes")
    path, out = folder / "in.npy", folder / "out.jsonl"
    np.save(path, array)
    status, stderr = run_in_process("-i", str(path), "--mode", mode, "-o", str(out))
    check_outcome(status, stderr)
    usable = array.ndim == 2 and array.shape[0] > 0 and array.shape[1] > 0
    assert (status != 2) == usable or (status == 2 and "no good record" in stderr)
    if status != 2:  # the file holds each good row's result, as the backend computes it
        written = {r["id"]: r["mean"] for r in map(json.loads, out.read_text().splitlines())}
        assert set(written) <= set(range(array.shape[0]))
        if status == 0:
            assert len(written) == array.shape[0]
        rows = np.asarray(array, dtype=array.dtype if array.dtype.kind == "f" else np.float64)
        ids = sorted(written)
        expected = REF.row_mean(REF.minmax_normalize(rows[ids]))
        got = np.array([np.nan if written[i] is None else written[i] for i in ids], dtype=float)
        np.testing.assert_allclose(got, expected.astype(float), rtol=1e-6, equal_nan=True)


@_PROPERTY
@given(
    rows=st.lists(
        st.lists(
            st.one_of(
                st.floats(allow_nan=False, width=64),
                st.integers(min_value=-(2**70), max_value=2**70),
                st.none(),
                st.text(max_size=3),
            ),
            max_size=5,
        ),
        max_size=6,
    ),
    mode=st.sampled_from(["columnar", "per-message"]),
)
def test_random_jsonl_records_never_end_in_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, rows: list[list[Any]], mode: str
) -> None:
    path = tmp_path_factory.mktemp("records") / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    check_outcome(*run_in_process("-i", str(path), "--mode", mode))


# -- synthetic records -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "width", "batch", "seed"),
    [(23, 3, 5, 0), (10, 3, 1, 7), (4097, 64, 4096, 0), (9, 5, 9, 2**40)],
)
def test_synthetic_records_are_the_seeds_float32_draws_however_chunked(
    tmp_path: Path, count: int, width: int, batch: int, seed: int
) -> None:
    """The documented values: ``default_rng(seed).random((count, width), float32)``,
    whatever the batch (odd widths and batches split the generator's 64-bit outputs)."""
    pipeline = tmp_path / "normalize.toml"
    pipeline.write_text('[pipeline]\nname = "n"\n[stages.preprocess]\nstage = "preprocess"\n')
    out = tmp_path / "out.npy"
    status = main(
        [
            "run",
            str(pipeline),
            *("--synthetic", str(count), "--width", str(width), "--batch", str(batch)),
            *("--seed", str(seed), "-o", str(out), "--no-progress"),
        ]
    )
    assert status == 0
    drawn = np.random.default_rng(seed).random((count, width), dtype=np.float32)
    np.testing.assert_array_equal(np.load(out), REF.minmax_normalize(drawn))
