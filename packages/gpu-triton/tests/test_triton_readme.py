"""The package README's examples run as written (interpreted kernels)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
TOML_BLOCKS = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.interpreter
@pytest.mark.parametrize("code", BLOCKS)
def test_readme_example_runs(code: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(code + "\nassert accepted == 100 and meta[:, 0].tolist()[:2] == [0, 2]\n")
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=100,
        env={**os.environ, "TRITON_INTERPRET": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_readme_has_one_python_example() -> None:
    assert len(BLOCKS) == 1


def test_readme_has_one_pipeline_file() -> None:
    assert len(TOML_BLOCKS) == 1


@pytest.mark.interpreter
async def test_readme_pipeline_file_runs_through_a_device_ring() -> None:
    import numpy as np
    from pydotcompute import Pipeline, records_from_array
    from pydotcompute.plugins import create_plugin_manager
    from pydotcompute_triton import triton_unavailable_reason

    if triton_unavailable_reason() is not None:
        pytest.skip(triton_unavailable_reason())
    pipeline = Pipeline.from_toml_text(TOML_BLOCKS[0], source="README.md")
    x = np.random.default_rng(2).standard_normal((300, 16)).astype(np.float32)
    async with pipeline.open(plugins=create_plugin_manager()) as run:
        results = [r async for r in run.process(records_from_array(x, batch_size=100))]
        (link,) = run.ring_links()["preprocess"].values()
    assert link.capacity == 131072 and link.ring is not None
    assert link.ring.statistics().popped == 300
    assert sum(len(r) for r in results) == 300
    assert results[0].columns == ("mean", "std")
