"""GPU benchmark fixtures (see gpu_harness.py). Collected only when benchmarks are asked
for (``-o python_files=bench_*.py``); skipped where neither a CUDA device nor the Triton
interpreter is there."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from gpu_harness import INTERPRET, Mode, current_mode, references_for


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if INTERPRET or torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="GPU benchmarks need a CUDA device or TRITON_INTERPRET=1")
    for item in items:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def mode() -> Mode:
    return current_mode()


@pytest.fixture(scope="session")
def references(mode: Mode) -> dict[str, Any]:
    """The bandwidths every figure is a fraction of, measured once per session."""
    return references_for(mode)
