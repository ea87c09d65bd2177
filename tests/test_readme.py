"""The Python examples of the READMEs run as written, and print what they promise."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
# Each README, with what its examples must print (every block's output, in order).
EXPECTED = {
    "README.md": ["2.0", "clean: nothing left behind"],
    "packages/core/README.md": [
        "('mean', 'max') [[0.5, 1.0], [0.5, 1.0]]",
        "('mean', 'max') [[0.5, 1.0], [0.5, 1.0]]",
    ],
}
CASES = [
    (readme, code)
    for readme in EXPECTED
    for code in re.findall(r"```python\n(.*?)```", (ROOT / readme).read_text(), flags=re.S)
]


def test_each_readme_has_python_examples() -> None:
    assert {readme for readme, _ in CASES} == set(EXPECTED)


@pytest.mark.parametrize(("readme", "code"), CASES, ids=[readme for readme, _ in CASES])
def test_readme_example_runs(readme: str, code: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for expected in EXPECTED[readme]:
        assert done.stdout.count(expected) == EXPECTED[readme].count(expected), done.stdout
