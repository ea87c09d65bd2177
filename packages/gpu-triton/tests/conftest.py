"""Shared fixtures, and the mode rules: one Triton mode per process.

* ``interpreter`` tests run only when ``TRITON_INTERPRET=1`` was set before triton was
  first imported (``TRITON_INTERPRET=1 pytest -m interpreter ...``); skipped otherwise.
* ``compile_check`` tests run only without it (see test_compile_kernels.py).
* ``gpu`` tests run only on a CUDA device with the interpreter off.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
from pydotcompute.backend import NumpyBackend

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"


def _interpreter_skip_reason() -> str | None:
    if not INTERPRET:
        return (
            "needs the Triton interpreter: run with TRITON_INTERPRET=1 set in the "
            "environment (before triton is first imported)"
        )
    from pydotcompute_triton import triton_unavailable_reason

    return triton_unavailable_reason()


def _gpu_skip_reason() -> str | None:
    if INTERPRET:
        return "gpu tests need compiled kernels: unset TRITON_INTERPRET"
    if not torch.cuda.is_available():
        return "no CUDA device"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reasons: dict[str, str | None] = {}
    for item in items:
        for marker, find in (("interpreter", _interpreter_skip_reason), ("gpu", _gpu_skip_reason)):
            if item.get_closest_marker(marker) is None:
                continue
            if marker not in reasons:
                reasons[marker] = find()
            reason = reasons[marker]
            if reason is not None:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def ref() -> NumpyBackend:
    """pydotcompute's numpy backend: the reference every backend must match."""
    return NumpyBackend()


def _assert_matches(
    actual: torch.Tensor, expected: npt.ArrayLike, atol: float = 0.0, rtol: float = 0.0
) -> None:
    """``actual`` equals ``expected`` within ``atol``/``rtol``; NaN where NaN; shape equal."""
    exp = torch.from_numpy(np.asarray(expected)).to(torch.float64)
    torch.testing.assert_close(
        actual.detach().cpu().to(torch.float64), exp, atol=atol, rtol=rtol, equal_nan=True
    )


@pytest.fixture(scope="session")
def assert_matches() -> Callable[..., None]:
    """``assert_matches(tensor, numpy_expected, atol=0, rtol=0)``: exact by default."""
    return _assert_matches


def host_f32(x: torch.Tensor) -> npt.NDArray[Any]:
    """A tensor as a float32 host array (exact for float16 and bfloat16)."""
    out: npt.NDArray[Any] = x.detach().cpu().to(torch.float32).numpy()
    return out


@pytest.fixture(scope="session")
def to_host_f32() -> Callable[[torch.Tensor], npt.NDArray[Any]]:
    """Tensor -> float32 numpy array (what the numpy reference takes for bfloat16)."""
    return host_f32


class RingModel:
    """The ring's contract in plain Python: a deque of record ids plus the counters."""

    def __init__(self, capacity: int, policy: str) -> None:
        self.capacity, self.policy = capacity, policy
        self.items: collections.deque[int] = collections.deque()
        self.pushed = self.popped = self.dropped = self.rejected = 0

    def push(self, ids: list[int]) -> int:
        if self.policy == "drop_oldest":
            for i in ids:
                if len(self.items) == self.capacity:
                    self.items.popleft()
                    self.dropped += 1
                self.items.append(i)
            self.pushed += len(ids)
            return len(ids)
        accepted = min(len(ids), self.capacity - len(self.items))
        self.items.extend(ids[:accepted])
        self.pushed += accepted
        if self.policy == "reject":
            self.rejected += len(ids) - accepted
        return accepted

    def pop(self, m: int) -> list[int]:
        out = [self.items.popleft() for _ in range(min(m, len(self.items)))]
        self.popped += len(out)
        return out


@pytest.fixture(scope="session")
def ring_model() -> type[RingModel]:
    """The DeviceRing's contract as a deque: ``ring_model(capacity, policy)``."""
    return RingModel
