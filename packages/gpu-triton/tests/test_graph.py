"""CapturedStep's guard: it refuses anything but CUDA tensors (the graphs run in test_gpu_device)."""

from __future__ import annotations

import pytest
import torch
from pydotcompute_triton import CapturedStep


def test_refuses_cpu_tensors() -> None:
    with pytest.raises(
        ValueError, match="CapturedStep needs a CUDA example tensor; got one on cpu"
    ):
        CapturedStep(lambda x: x + 1, torch.ones(3))


def test_refuses_non_tensors() -> None:
    with pytest.raises(ValueError, match="got one on list"):
        CapturedStep(lambda x: x, [1.0])  # type: ignore[arg-type]
