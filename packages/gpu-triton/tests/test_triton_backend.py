"""TritonBackend, interpreted: what the conformance suite (test_conformance_torch_triton.py) does
not cover, namely the device, bfloat16, and error messages that name the operation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from pydotcompute.backend import BackendCapabilities, ComputeBackend

pytest.importorskip("triton")

from pydotcompute_triton import TritonBackend

pytestmark = pytest.mark.interpreter


@pytest.fixture(scope="module")
def backend() -> TritonBackend:
    return TritonBackend()


def test_satisfies_the_protocol(backend: TritonBackend) -> None:
    assert isinstance(backend, ComputeBackend)
    assert backend.name == "triton" and backend.device == torch.device("cpu")
    assert backend.capabilities == BackendCapabilities(device_rings=True)
    assert repr(backend) == "TritonBackend(device='cpu')"


def test_bfloat16_goes_through_the_kernels(
    backend: TritonBackend, ref: Any, assert_matches: Any
) -> None:
    b = backend.asarray(np.array([[0.5, 1.5, -2.0]]), dtype="bfloat16")
    assert b.dtype == torch.bfloat16
    np.testing.assert_array_equal(backend.to_numpy(b), [[0.5, 1.5, -2.0]])
    out = backend.minmax_normalize(b)
    assert out.dtype == torch.bfloat16
    expected = torch.from_numpy(ref.minmax_normalize(np.float32([[0.5, 1.5, -2.0]])))
    # One bfloat16 ulp: the interpreter truncates float32 -> bfloat16 (a GPU rounds).
    assert_matches(out, expected.to(torch.bfloat16).to(torch.float64).numpy(), 1e-5, 1.6e-2)
    assert_matches(backend.row_var(b), ref.row_var(np.float32([[0.5, 1.5, -2.0]])), 0.0, 2e-6)


def test_errors_name_the_operation(backend: TritonBackend) -> None:
    with pytest.raises(ValueError, match="minmax_normalize takes a 2-D tensor"):
        backend.minmax_normalize(np.zeros(3))
    with pytest.raises(ValueError, match="row_std takes a 2-D tensor"):
        backend.row_std(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="row_range takes a 2-D tensor"):
        backend.row_range(np.zeros(3))
    with pytest.raises(ValueError, match="non-decreasing"):
        backend.segment_sum(np.zeros((3, 1)), [0, 2, 1])
    with pytest.raises(ValueError, match="non-decreasing"):
        backend.segment_mean(np.zeros((3, 1)), [0, 2, 1])
    with pytest.raises(TypeError, match="keys must be integers"):
        backend.partition(np.array([1.5]), 2)
    with pytest.raises(ValueError, match=r"clip low \(1.0\) is above high \(0.0\)"):
        backend.clip(np.zeros(3), 1.0, 0.0)
