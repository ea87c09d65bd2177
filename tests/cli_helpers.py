"""Running the ``pydotcompute`` command as a user does, for the CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIDE = str(ROOT / "examples" / "guide.toml")


def pydotcompute(
    *argv: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pydotcompute.cli ARGV`` in a new process (``env``: variables set
    on top of this process's); its output, as text."""
    return subprocess.run(
        [sys.executable, "-m", "pydotcompute.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
        env=None if env is None else {**os.environ, **env},
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The command failed with usage/input status 2 and one line on stderr; that line."""
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]
