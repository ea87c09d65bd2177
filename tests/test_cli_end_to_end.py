"""The pydotcompute command end to end, with the installed stages: every input format,
every output format, bad files (named by file, line and field, good rows kept), the
telemetry report as text and as JSON, and the console script itself."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import pydotcompute
from pydotcompute import RestartPolicy
from pydotcompute.cli import main
from pydotcompute.pipeline import STAGE_SETTINGS

ROOT = Path(__file__).resolve().parents[1]
GUIDE = str(ROOT / "examples" / "guide.toml")


def normalized_mean(x: np.ndarray) -> np.ndarray:
    lo = np.nanmin(x, axis=1, keepdims=True)
    hi = np.nanmax(x, axis=1, keepdims=True)
    with np.errstate(all="ignore"):
        n = np.where(hi - lo > 0, (x - lo) / (hi - lo), 0.0)
    return n.astype(np.float32).mean(axis=1)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def records() -> np.ndarray:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(40, 8)).astype(np.float32)
    x[3] = 1.0  # constant
    return x


# -- each input format ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["columnar", "per-message"])
def test_jsonl_in_jsonl_out(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, records: np.ndarray, mode: str
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        "".join(
            json.dumps({"id": f"r{i}", "values": row.tolist()}) + "\n"
            for i, row in enumerate(records)
        )
    )
    out = tmp_path / "out.jsonl"
    status, stdout, _ = cli(
        capsys, "run", GUIDE, "-i", str(src), "-o", str(out), "--mode", mode, "--batch", "7"
    )
    assert status == 0
    rows = {r["id"]: r["mean"] for r in read_jsonl(out)}
    assert set(rows) == {f"r{i}" for i in range(len(records))}
    expected = normalized_mean(records)
    np.testing.assert_allclose(
        [rows[f"r{i}"] for i in range(len(records))], expected, rtol=1e-5, atol=1e-7
    )
    assert "per-stage telemetry" in stdout and "preprocess" in stdout and "compute" in stdout
    assert f"{len(records)} records in ({mode})" in stdout


def test_csv_in_npy_out_in_input_order(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, records: np.ndarray
) -> None:
    src = tmp_path / "in.csv"
    header = ",".join(f"v{i}" for i in range(records.shape[1]))
    src.write_text(
        header + "\n" + "".join(",".join(map(repr, map(float, row))) + "\n" for row in records)
    )
    out = tmp_path / "out.npy"
    status, _, _ = cli(capsys, "run", GUIDE, "-i", str(src), "-o", str(out), "--batch", "16")
    assert status == 0
    result = np.load(out)
    assert result.shape == (len(records), 1)
    np.testing.assert_allclose(result[:, 0], normalized_mean(records), rtol=1e-5, atol=1e-7)


def test_npy_in_npy_out(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, records: np.ndarray
) -> None:
    np.save(tmp_path / "in.npy", records)
    status, _, _ = cli(
        capsys,
        "run",
        GUIDE,
        "-i",
        str(tmp_path / "in.npy"),
        "-o",
        str(tmp_path / "out.npy"),
        "--mode",
        "per-message",
    )
    assert status == 0
    np.testing.assert_allclose(
        np.load(tmp_path / "out.npy")[:, 0], normalized_mean(records), rtol=1e-5, atol=1e-7
    )


def test_synthetic_input_and_the_json_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, stdout, _ = cli(
        capsys,
        "run",
        GUIDE,
        "--synthetic",
        "5000",
        "--width",
        "16",
        "--json",
        "-o",
        str(tmp_path / "o.npy"),
    )
    assert status == 0
    report = json.loads(stdout)  # stdout is JSON and nothing else
    assert (
        report["pipeline"] == "guide"
        and report["records_fed"] == 5000
        and report["results"] == 5000
    )
    assert list(report["stages"]) == ["preprocess", "compute"]
    stage = report["stages"]["preprocess"]
    assert stage["records_in"] == 5000 and stage["records_per_s"] > 0
    assert {"input_queue_depth", "messages_processed", "workers", "backend"} <= set(stage)
    assert report["input"]["synthetic"] == 5000 and report["input"]["bad_records"] == 0
    assert np.load(tmp_path / "o.npy").shape == (5000, 1)
    rng = np.random.default_rng(0)  # the documented seed 0
    np.testing.assert_allclose(
        np.load(tmp_path / "o.npy")[:, 0],
        normalized_mean(rng.random((5000, 16), dtype=np.float32)),
        rtol=1e-5,
    )


def test_the_progress_display_can_be_forced(capsys: pytest.CaptureFixture[str]) -> None:
    status, stdout, _ = cli(capsys, "run", GUIDE, "--synthetic", "2000", "--progress")
    assert status == 0 and "per-stage telemetry" in stdout


# -- bad input --------------------------------------------------------------------------


def test_bad_jsonl_rows_are_named_and_the_good_ones_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text(
        '{"id": "a", "values": [1, 2, 3]}\n'
        '{"id": "b", "values": [1, "two", 3]}\n'
        "this is not json\n"
        '{"id": "d", "values": [3, 2, 1]}\n'
        '{"id": "e", "values": [1, 2]}\n'
        '{"id": "f", "valus": [1, 2, 3]}\n'
        '{"id": "g", "values": [5, 5, 5]}\n'
    )
    out = tmp_path / "out.jsonl"
    status, stdout, stderr = cli(capsys, "run", GUIDE, "-i", str(src), "-o", str(out))
    assert status == 1  # ran, but not cleanly
    assert f"{src}:2: field 'values[1]': not a number: 'two'" in stderr
    assert f"{src}:3: field '<line>': not valid JSON" in stderr
    assert f"{src}:5: field 'values': has 2 values, but the records before it have 3" in stderr
    assert f"{src}:6: field 'values': missing" in stderr
    assert {r["id"]: r["mean"] for r in read_jsonl(out)} == {"a": 0.5, "d": 0.5, "g": 0.0}
    assert "4 bad input records skipped" in stdout


def test_bad_csv_rows_in_the_json_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    src = tmp_path / "bad.csv"
    src.write_text("id,x,y\nr1,1,2\nr2,1,oops\nr3,4\nr4,2,1\n")
    status, stdout, _ = cli(
        capsys, "run", GUIDE, "-i", str(src), "--json", "-o", str(tmp_path / "o.jsonl")
    )
    assert status == 1
    report = json.loads(stdout)
    assert report["input"]["bad_records"] == 2
    assert [(e["line"], e["field"]) for e in report["input"]["errors"]] == [(3, "y"), (4, "<row>")]
    assert report["results"] == 2
    assert [r["id"] for r in read_jsonl(tmp_path / "o.jsonl")] in (["r1", "r4"], ["r4", "r1"])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", "", "holds no records"),
        ("allbad.jsonl", '{"values": ["x"]}\n', "no good record; the first problem"),
        ("broken.npy", "not an array", "not a readable .npy file"),
        ("data.txt", "1,2\n", "cannot tell the format from the extension '.txt'"),
    ],
)
def test_unusable_input_files_stop_before_running(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, content: str, message: str
) -> None:
    src = tmp_path / name
    src.write_text(content)
    status, stdout, stderr = cli(capsys, "run", GUIDE, "-i", str(src))
    assert status == 2 and stdout == ""
    assert str(src) in stderr and message in stderr


def test_a_missing_input_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, stderr = cli(capsys, "run", GUIDE, "-i", str(tmp_path / "nope.csv"))
    assert status == 2 and f"{tmp_path / 'nope.csv'}: no such file" in stderr


def test_nan_results_are_null_in_json_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    src = tmp_path / "nan.jsonl"
    src.write_text('{"values": [null, null]}\n{"values": [1, 3]}\n')
    status, _, _ = cli(capsys, "run", GUIDE, "-i", str(src), "-o", str(tmp_path / "o.jsonl"))
    assert status == 0
    assert sorted(read_jsonl(tmp_path / "o.jsonl"), key=lambda r: r["id"]) == [
        {"id": 0, "mean": None},
        {"id": 1, "mean": 0.5},
    ]


# -- bad pipelines ----------------------------------------------------------------------


def test_a_bad_pipeline_file_names_the_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        "[stages.preprocess]\n\n[stages.compute]\n[stages.compute.params]\nstats = ['mean', 'median']\n"
    )
    status, stdout, stderr = cli(capsys, "run", str(pipeline), "--synthetic", "10")
    assert status == 2 and stdout == ""
    assert f"{pipeline}:5: stage 'compute': parameter 'stats': 'median' not among" in stderr


def test_an_unknown_stage_lists_the_installed_ones(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        "[stages.first]\nstage = 'preprocess'\n[stages.second]\nstage = 'normalise'\n"
    )
    status, _, stderr = cli(capsys, "validate", str(pipeline))
    assert status == 2
    assert (
        f"{pipeline}:4: stage 'second': no installed plugin provides a stage named 'normalise'"
        in stderr
    )
    assert "preprocess (from pydotcompute-stages)" in stderr


def test_validate_a_good_file(capsys: pytest.CaptureFixture[str]) -> None:
    status, stdout, _ = cli(capsys, "validate", str(ROOT / "examples" / "fan_out_fan_in.toml"))
    assert status == 0 and "is valid" in stdout and "compute: compute x4 on numpy" in stdout


SETTINGS_TOML = """\
[pipeline]
batch_size = 64

[stages.preprocess]
backpressure = "REJECT"
restart = { max_restarts = 2, backoff = 0.5 }

[stages.compute]
workers = 2
ring_rows = 512
"""


def test_validate_shows_every_stage_setting_as_a_file_would_hold_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(SETTINGS_TOML)
    status, stdout, _ = cli(capsys, "validate", str(pipeline))
    lines = stdout.splitlines()
    assert status == 0 and lines[1].startswith("  preprocess: preprocess x1 on numpy")
    # Each stage's settings line is the body of a TOML inline table: it reads back.
    preprocess = tomllib.loads(f"s = {{ {lines[2].strip()} }}")["s"]
    compute = tomllib.loads(f"s = {{ {lines[4].strip()} }}")["s"]
    assert list(preprocess) == list(STAGE_SETTINGS)
    assert preprocess["backpressure"] == "reject" and preprocess["batch_size"] == 64
    assert preprocess["restart"] == dataclasses.asdict(RestartPolicy(max_restarts=2, backoff=0.5))
    assert (compute["workers"], compute["ring_rows"], compute["restart"]) == (2, 512, "never")
    assert preprocess["ring_rows"] == "auto" and compute["backend"] == "numpy"


def test_validate_json_is_the_resolved_plan(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(SETTINGS_TOML)
    status, stdout, _ = cli(capsys, "validate", "--json", str(pipeline))
    plan = json.loads(stdout)
    assert status == 0 and plan["pipeline"] == "p"
    first, second = plan["stages"]
    assert (first["name"], first["inputs"], first["outputs"]) == ("preprocess", [], ["compute"])
    assert second["params"] == {"stats": ["mean"]}  # the stage's defaults, filled in
    assert second["settings"] == {
        name: setting.default for name, setting in STAGE_SETTINGS.items()
    } | {"workers": 2, "ring_rows": 512, "batch_size": 64}


def test_validate_names_the_line_of_a_bad_setting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(SETTINGS_TOML.replace("ring_rows = 512", "ring_rows = 'many'"))
    status, stdout, stderr = cli(capsys, "validate", str(pipeline))
    assert status == 2 and stdout == ""
    assert (
        f"error: {pipeline}:10: stage 'compute': ring_rows must be a positive integer or "
        "'auto', got 'many'"
    ) in stderr


def test_a_missing_pipeline_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, stderr = cli(capsys, "run", str(tmp_path / "none.toml"), "--synthetic", "1")
    assert status == 2 and "none.toml: no such file" in stderr


# -- stages and demo --------------------------------------------------------------------


def test_stages_lists_stages_and_backends_with_distributions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, stdout, _ = cli(capsys, "stages", "--json")
    assert status == 0
    listing = json.loads(stdout)
    stages = {s["name"]: s for s in listing["stages"]}
    assert stages["compute"]["distribution"] == "pydotcompute-stages"
    assert stages["compute"]["params"]["stats"]["default"] == ["mean"]
    assert {"name": "numpy", "distribution": "pydotcompute"} in listing["backends"]
    status, text, _ = cli(capsys, "stages")
    assert (
        status == 0 and "aggregator" in text and "pydotcompute-stages" in text and "numpy" in text
    )


def test_demo_runs_the_guides_pipeline(capsys: pytest.CaptureFixture[str]) -> None:
    status, stdout, _ = cli(capsys, "demo", "--records", "300", "--show", "3")
    assert status == 0
    assert stdout.count("record ") >= 3 and "result 0." in stdout
    assert "300 records in (per-message)" in stdout


def test_demo_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, stdout, _ = cli(capsys, "demo", "--records", "100", "--json")
    report = json.loads(stdout)
    assert status == 0 and report["results"] == 100 and report["mode"] == "per-message"
    assert all(
        not (isinstance(v, float) and math.isnan(v)) for v in report["stages"]["compute"].values()
    )


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, stderr = cli(capsys)
    assert status == 2 and "stages" in stderr and "run" in stderr


def test_the_console_script_is_installed_and_runs(tmp_path: Path) -> None:
    script = shutil.which("pydotcompute", path=str(Path(sys.executable).parent))
    assert script is not None, "the pydotcompute console script is not installed"
    done = subprocess.run(
        [script, "run", GUIDE, "--synthetic", "1000", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"] == 1000


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_run_goes_on_the_loop_chosen_and_says_which(loop: str) -> None:
    pytest.importorskip("uvloop")
    done = pydotcompute(
        "run", GUIDE, "--synthetic", "5000", "--json", env={"PYDOTCOMPUTE_LOOP": loop}
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["loop"] == loop and report["results"] == 5000


def test_a_loop_that_does_not_exist_is_one_line_and_status_2() -> None:
    done = pydotcompute("run", GUIDE, "--synthetic", "5", env={"PYDOTCOMPUTE_LOOP": "tokio"})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: PYDOTCOMPUTE_LOOP='tokio': choose 'asyncio' or 'uvloop' (or leave it unset)"
    ]
