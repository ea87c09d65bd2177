"""Issue 14, the CLI's outputs, through the real command: an output never overwrites
the input, ``.npy`` goes to the path asked for, and every result reaches the output
(several sinks into one ``.npy`` are refused before the run; one sink's results are in
input order)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import GUIDE, ROOT, one_error_line, pydotcompute

DAG = str(ROOT / "examples" / "dag.toml")

TWO_SINKS = """\
[pipeline]
name = "two_sinks"

[stages.norm]
stage = "preprocess"

[stages.a]
stage = "compute"
inputs = ["norm"]
params = { stats = ["mean"] }

[stages.b]
stage = "compute"
inputs = ["norm"]
params = { stats = ["min", "max", "std"] }
"""


def write_jsonl(path: Path, rows: list[list[float]]) -> Path:
    path.write_text("".join(json.dumps({"values": r}) + "\n" for r in rows))
    return path


# -- 1: the output is the input ------------------------------------------------------------


def test_an_output_that_is_the_input_is_refused_and_the_input_kept(tmp_path: Path) -> None:
    same = write_jsonl(tmp_path / "same.jsonl", [[1.0, 2.0], [3.0, 5.0]])
    before = same.read_bytes()
    line = one_error_line(pydotcompute("run", GUIDE, "-i", str(same), "-o", str(same)))
    assert f"{same}: the output is the input file {same}" in line
    assert same.read_bytes() == before


def test_another_spelling_of_the_input_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "s.npy", np.ones((3, 2), dtype=np.float32))
    before = (tmp_path / "s.npy").read_bytes()
    line = one_error_line(pydotcompute("run", GUIDE, "-i", "s.npy", "-o", "./s.npy", cwd=tmp_path))
    assert "./s.npy" in line and "s.npy" in line
    assert (tmp_path / "s.npy").read_bytes() == before


def test_a_link_to_the_input_is_refused(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [[1.0, 2.0]])
    before = src.read_bytes()
    os.link(src, tmp_path / "hard.jsonl")
    (tmp_path / "soft.jsonl").symlink_to(src)
    for name in ("hard.jsonl", "soft.jsonl"):
        out = tmp_path / name
        line = one_error_line(pydotcompute("run", GUIDE, "-i", str(src), "-o", str(out)))
        assert str(out) in line and str(src) in line
    assert src.read_bytes() == before


def test_the_pipeline_file_is_no_output_either(tmp_path: Path) -> None:
    pipeline = tmp_path / "p.jsonl"  # a pipeline file named like an output
    pipeline.write_text(Path(GUIDE).read_text())
    line = one_error_line(
        pydotcompute("run", str(pipeline), "--synthetic", "3", "-o", str(pipeline))
    )
    assert "the output is the input file" in line
    assert pipeline.read_text() == Path(GUIDE).read_text()


# -- 3: the path asked for -----------------------------------------------------------------


def test_npy_output_goes_to_the_path_asked_for(tmp_path: Path) -> None:
    out = tmp_path / "results.out"
    done = pydotcompute(
        "run", GUIDE, "--synthetic", "5", "-o", str(out), "--output-format", "npy", "--json"
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.out"]
    assert np.load(out).shape == (5, 1)
    assert json.loads(done.stdout)["output"] == str(out)


def test_an_unwritable_output_fails_before_the_run(tmp_path: Path) -> None:
    line = one_error_line(
        pydotcompute("run", GUIDE, "--synthetic", "5", "-o", str(tmp_path / "no" / "o.npy"))
    )
    assert "no/o.npy" in line


# -- 2: every result reaches the output ----------------------------------------------------


def test_two_sinks_into_one_npy_are_refused_before_the_run(tmp_path: Path) -> None:
    pipeline = tmp_path / "ts.toml"
    pipeline.write_text(TWO_SINKS)
    out = tmp_path / "ts.npy"
    line = one_error_line(pydotcompute("run", str(pipeline), "--synthetic", "5", "-o", str(out)))
    assert "2 sinks ('a', 'b')" in line and ".jsonl" in line
    assert not out.exists()


def test_two_sinks_into_jsonl_write_every_result(tmp_path: Path) -> None:
    pipeline = tmp_path / "ts.toml"
    pipeline.write_text(TWO_SINKS)
    out = tmp_path / "ts.jsonl"
    done = pydotcompute("run", str(pipeline), "--synthetic", "5", "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert json.loads(done.stdout)["results"] == len(rows) == 10
    assert sorted(r["id"] for r in rows if "mean" in r) == [0, 1, 2, 3, 4]
    assert sorted(r["id"] for r in rows if "std" in r) == [0, 1, 2, 3, 4]


def test_a_sink_gathering_two_kinds_of_results_into_npy_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "dag.npy"
    line = one_error_line(pydotcompute("run", DAG, "--synthetic", "50", "-o", str(out)))
    assert "sink 'gather' gathers results of 2 stages ('center', 'spread')" in line
    assert ".jsonl" in line and not out.exists()


@pytest.mark.parametrize("mode", ["columnar", "per-message"])
def test_npy_rows_are_in_input_order_and_the_count_matches(tmp_path: Path, mode: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 6))
    src = write_jsonl(tmp_path / "in.jsonl", x.tolist())
    out = tmp_path / "out.npy"
    done = pydotcompute(
        "run", GUIDE, "-i", str(src), "-o", str(out), "--mode", mode, "--batch", "7", "--json"
    )
    assert done.returncode == 0, done.stderr
    got = np.load(out)
    lo, hi = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    expected = ((x - lo) / (hi - lo)).astype(np.float32).mean(axis=1)
    np.testing.assert_allclose(got[:, 0], expected, rtol=1e-5, atol=1e-6)
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["results"] == got.shape[0] == 300


def test_run_help_states_the_order_rule() -> None:
    done = pydotcompute("run", "--help")
    text = " ".join(done.stdout.split())
    assert "input order" in text and "completion order" in text


@pytest.mark.parametrize("batch", ["2", "4096"])
def test_jsonl_lines_name_each_record_by_its_own_id_else_its_position(
    tmp_path: Path, batch: str
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        '{"id": "first \\u00e9", "values": [1, 2, 3]}\n'
        '{"values": [3, 1, 2]}\n'
        '{"values": ["bad"]}\n'
        '{"id": 12345678901234567890, "values": [2, 2, 4]}\n'
        "[0, 1, 4]\n"
    )
    out = tmp_path / "out.jsonl"
    done = pydotcompute("run", GUIDE, "-i", str(src), "-o", str(out), "--batch", batch)
    assert done.returncode == 1, done.stderr  # the bad record on line 3
    lines = sorted(out.read_text().splitlines())
    assert lines == [
        '{"id": "first \\u00e9", "mean": 0.5}',
        '{"id": 1, "mean": 0.5}',
        '{"id": 12345678901234567890, "mean": 0.3333333333333333}',
        '{"id": 4, "mean": 0.4166666666666667}',
    ]
