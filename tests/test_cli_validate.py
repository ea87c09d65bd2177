"""``pydotcompute validate`` through the installed console script: every mistake in a
file reported at once, each on its own line with its line number (exit 2), and
settings far beyond the machine warned about (exit 0)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIVE_MISTAKES = """\
[pipeline]
name = "five"
worker = 2

[stages.preprocess]
stage = "preprocess"
queue_size = 0

[stages.compute]
stage = "compute"
inputs = ["preproces"]
backend = "nope"

[stages.compute.params]
stat = ["mean"]
"""

HUGE = """\
[stages.preprocess]
stage = "preprocess"

[stages.compute]
stage = "compute"
workers = 100000

[stages.compute.params]
stats = ["mean"]
"""


def pydotcompute(*argv: str) -> subprocess.CompletedProcess[str]:
    script = shutil.which("pydotcompute", path=str(Path(sys.executable).parent))
    assert script is not None, "the pydotcompute console script is not installed"
    return subprocess.run([script, *argv], capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def five(tmp_path: Path) -> Path:
    path = tmp_path / "five.toml"
    path.write_text(FIVE_MISTAKES)
    return path


def test_every_mistake_is_reported_at_once_with_its_line(five: Path) -> None:
    done = pydotcompute("validate", str(five))
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 5 and all(line.startswith(f"error: {five}:") for line in lines)
    numbers = [int(re.match(rf"error: {re.escape(str(five))}:(\d+): ", ln)[1]) for ln in lines]  # type: ignore[index]
    assert numbers == [3, 7, 11, 12, 15]
    assert "unknown pipeline default 'worker'" in lines[0]
    assert "stage 'preprocess'" in lines[1] and "queue_size" in lines[1]
    assert "input 'preproces' is not a stage" in lines[2]
    assert "stage 'compute'" in lines[3] and "'nope'" in lines[3]
    assert "unknown parameter 'stat'" in lines[4]


def test_run_reports_the_same_mistakes_and_runs_nothing(five: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    done = pydotcompute("run", str(five), "--synthetic", "10", "-o", str(out))
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 5
    assert not out.exists()


def test_one_mistake_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "one.toml"
    path.write_text(FIVE_MISTAKES.split("\n[stages.compute]")[0].replace("worker = 2\n", ""))
    done = pydotcompute("validate", str(path))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: {path}:6: stage 'preprocess': queue_size must be a positive integer, got 0"
    ]


def test_workers_far_beyond_the_machine_warn_but_validate(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    path.write_text(HUGE)
    done = pydotcompute("validate", str(path))
    assert done.returncode == 0 and "is valid" in done.stdout
    warned = done.stderr.splitlines()
    assert warned[0].startswith(f"warning: {path}: stage 'compute': workers: 100000 workers")
    # Their full queues may be beyond this machine's RAM too (not on a big machine).
    assert all(line.startswith(f"warning: {path}: stage 'compute': ") for line in warned)


def test_validate_json_lists_the_resource_warnings(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    path.write_text(HUGE)
    done = pydotcompute("validate", str(path), "--json")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert listing["warnings"][0].startswith(f"{path}: stage 'compute': workers: 100000 workers")
    guide = json.loads(pydotcompute("validate", "examples/guide.toml", "--json").stdout)
    assert guide["warnings"] == []


def test_run_prints_a_resource_warning_once_and_runs(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text(HUGE.replace("workers = 100000", "queue_size = 1000000000000"))
    done = pydotcompute("run", str(path), "--synthetic", "10", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("warning: ") == 1
    assert f"warning: {path}: stage 'compute': queue_size: " in done.stderr
    assert "against" in done.stderr and "of RAM" in done.stderr


def test_a_sized_pipeline_validates_without_a_word(tmp_path: Path) -> None:
    done = pydotcompute("validate", "examples/guide.toml")
    assert done.returncode == 0 and done.stderr == ""


def test_validate_shows_the_fused_plan(tmp_path: Path) -> None:
    done = pydotcompute("validate", "examples/guide.toml")
    assert done.returncode == 0, done.stderr
    assert "  fused, one worker runs: preprocess -> compute" in done.stdout.splitlines()
    listing = json.loads(pydotcompute("validate", "examples/guide.toml", "--json").stdout)
    assert listing["groups"] == [["preprocess", "compute"]]
    apart = tmp_path / "apart.toml"
    apart.write_text(
        Path("examples/guide.toml").read_text().replace("[pipeline]", "[pipeline]\nfuse = false", 1)
    )
    done = pydotcompute("validate", str(apart), "--json")
    assert json.loads(done.stdout)["groups"] == [["preprocess"], ["compute"]]
