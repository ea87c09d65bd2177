"""Running the ``pydotcompute`` command as a user does, for the CLI tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIDE = str(ROOT / "examples" / "guide.toml")


def pydotcompute(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pydotcompute.cli ARGV`` in a new process; its output, as text."""
    return subprocess.run(
        [sys.executable, "-m", "pydotcompute.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The command failed with usage/input status 2 and one line on stderr; that line."""
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]
