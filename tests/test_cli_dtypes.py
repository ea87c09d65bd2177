"""Issue 14 (5), through the real command: values keep their precision. JSON and CSV
numbers are read as float64 unless the pipeline's ``dtype`` says otherwise, ``.npy``
keeps its dtype, and a value the dtype cannot hold is a bad record with its file and
line, never a silently different number."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import GUIDE, pydotcompute

BIG = "[16777217, 16777219, 16777221]\n"  # integers float32 cannot hold exactly


def bad_records(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("bad record skipped")]


def pipeline_file(tmp_path: Path, stages: str, dtype: str | None = None) -> str:
    """A pipeline file: ``[pipeline]`` with ``dtype`` if given, then ``stages``."""
    path = tmp_path / "p.toml"
    header = "" if dtype is None else f'[pipeline]\ndtype = "{dtype}"\n\n'
    path.write_text(header + stages)
    return str(path)


# A stage that hands records on unchanged: what comes out is what the pipeline was fed.
PASS_THROUGH = "[stages.distributor]\n"
MIN = '[stages.compute]\nparams = { stats = ["min", "max"] }\n'


def results(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("mode", ["columnar", "per-message"])
def test_json_numbers_reach_the_pipeline_as_float64(tmp_path: Path, mode: str) -> None:
    src = tmp_path / "x.jsonl"
    src.write_text(BIG)
    out = tmp_path / "o.jsonl"
    done = pydotcompute(
        "run", pipeline_file(tmp_path, PASS_THROUGH), "-i", str(src), "-o", str(out), "--json",
        "--mode", mode,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["input"]["bad_records"] == 0
    (row,) = results(out)
    assert row["values"] == [16777217, 16777219, 16777221]


def test_the_min_of_big_integers_is_exact_by_default(tmp_path: Path) -> None:
    src = tmp_path / "x.jsonl"
    src.write_text(BIG)
    out = tmp_path / "o.jsonl"
    done = pydotcompute("run", pipeline_file(tmp_path, MIN), "-i", str(src), "-o", str(out))
    assert done.returncode == 0, done.stderr
    (row,) = results(out)
    assert (row["min"], row["max"]) == (16777217, 16777221)


def test_under_float32_integers_it_cannot_hold_are_bad_records(tmp_path: Path) -> None:
    src = tmp_path / "x.jsonl"
    src.write_text("[1, 2, 4]\n" + BIG)
    done = pydotcompute("run", pipeline_file(tmp_path, MIN, "float32"), "-i", str(src), "--json")
    assert done.returncode == 1, done.stderr
    (line,) = bad_records(done)
    assert f"{src}:2: field 'values[0]': 16777217 is not exact in float32" in line
    assert "it would become 16777216; integers are exact up to 2**24" in line
    report = json.loads(done.stdout)
    assert report["records_fed"] == 1 and report["input"]["bad_records"] == 1


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_1e39_is_a_value_in_float64_and_a_bad_record_in_float32(tmp_path: Path, fmt: str) -> None:
    src = tmp_path / f"x.{fmt}"
    src.write_text("[1e39, 0, 1]\n[1, 2, 3]\n" if fmt == "jsonl" else "a,b,c\n1e39,0,1\n1,2,3\n")
    out = tmp_path / "o.jsonl"
    done = pydotcompute(
        "run", pipeline_file(tmp_path, PASS_THROUGH), "-i", str(src), "-o", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert bad_records(done) == [] and "Warning" not in done.stderr
    assert [row["values"] for row in results(out)] == [[1e39, 0, 1], [1, 2, 3]]

    done = pydotcompute("run", pipeline_file(tmp_path, MIN, "float32"), "-i", str(src))
    assert done.returncode == 1, done.stderr
    (line,) = bad_records(done)
    field = "values[0]" if fmt == "jsonl" else "a"
    line_no = 1 if fmt == "jsonl" else 2
    assert f"{src}:{line_no}: field '{field}': 1e+39 overflows float32" in line
    assert "Warning" not in done.stderr


def test_a_guide_run_over_1e39_says_nothing_stray(tmp_path: Path) -> None:
    src = tmp_path / "x.jsonl"
    src.write_text("[1e39, 0, 1]\n")
    done = pydotcompute("run", GUIDE, "-i", str(src), "--json")
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr  # the float32 compute gives inf, without a numpy warning


def test_npy_float64_input_keeps_float64(tmp_path: Path) -> None:
    src = tmp_path / "x.npy"
    np.save(src, np.array([[16777217.0, 0.1], [1e39, -2.5]]))
    out = tmp_path / "o.jsonl"
    done = pydotcompute(
        "run", pipeline_file(tmp_path, PASS_THROUGH), "-i", str(src), "-o", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert [row["values"] for row in results(out)] == [[16777217.0, 0.1], [1e39, -2.5]]


def test_npy_float16_input_under_dtype_float16(tmp_path: Path) -> None:
    values = np.array([[0.5, 2048.0, -3.0], [1.0, 0.25, 65504.0]], dtype=np.float16)
    src = tmp_path / "h.npy"
    np.save(src, values)
    out = tmp_path / "o.jsonl"
    stages = PASS_THROUGH
    done = pydotcompute(
        "run", pipeline_file(tmp_path, stages, "float16"), "-i", str(src), "-o", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert [row["values"] for row in results(out)] == values.astype(float).tolist()
    done = pydotcompute("run", pipeline_file(tmp_path, MIN, "float16"), "-i", str(src), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"] == 2


def test_text_beyond_float16_under_dtype_float16_is_a_bad_record(tmp_path: Path) -> None:
    src = tmp_path / "x.csv"
    src.write_text("a,b\n1,2\n2049,1\n70000,1\n")
    done = pydotcompute("run", pipeline_file(tmp_path, MIN, "float16"), "-i", str(src))
    assert done.returncode == 1, done.stderr
    assert bad_records(done) == [
        f"bad record skipped: {src}:3: field 'a': 2049 is not exact in float16 (it would "
        "become 2048; integers are exact up to 2**11)",
        f"bad record skipped: {src}:4: field 'a': 70000.0 overflows float16 (largest 65504)",
    ]


@pytest.mark.parametrize("dtype", ["bfloat16", "float128"])
def test_an_unknown_dtype_is_one_line_with_the_file_and_line(tmp_path: Path, dtype: str) -> None:
    src = tmp_path / "x.jsonl"
    src.write_text("[1]\n")
    toml = pipeline_file(tmp_path, MIN, dtype)
    done = pydotcompute("run", toml, "-i", str(src))
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"error: {toml}:2:") and "dtype must be one of float16" in line


def test_npy_rows_float32_cannot_hold_are_bad_records_in_input_order(tmp_path: Path) -> None:
    src = tmp_path / "f.npy"
    np.save(src, np.array([[1.0, 2.0], [1e39, 0.0], [3.0, 5.0]]))
    out = tmp_path / "o.jsonl"
    done = pydotcompute(
        "run", pipeline_file(tmp_path, MIN, "float32"), "-i", str(src), "-o", str(out)
    )
    assert done.returncode == 1, done.stderr
    (line,) = bad_records(done)
    assert f"{src}:2: field 'values[0]'" in line and "overflows float32" in line
    assert [(row["id"], row["min"]) for row in results(out)] == [(0, 1.0), (2, 3.0)]
