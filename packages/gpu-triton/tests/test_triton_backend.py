"""TritonBackend, interpreted: the ComputeBackend protocol against the numpy backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from pydotcompute.stage import ComputeBackend

pytest.importorskip("triton")

from pydotcompute_triton import TritonBackend

pytestmark = pytest.mark.interpreter

NAN, INF = float("nan"), float("inf")
X = np.array(
    [
        [1, 2, 3, 4, 5],
        [5, 5, 5, 5, 5],
        [NAN, 1, 3, 2, NAN],
        [-INF, 0, 1, 2, 3],
        [INF, INF, 0, 1, 2],
    ],
    dtype=np.float32,
)


@pytest.fixture(scope="module")
def backend() -> TritonBackend:
    return TritonBackend()


def test_satisfies_the_protocol(backend: TritonBackend) -> None:
    assert isinstance(backend, ComputeBackend)
    assert backend.name == "triton" and backend.device == torch.device("cpu")
    assert repr(backend) == "TritonBackend(device='cpu')"


def test_asarray_and_to_numpy_round_trip(backend: TritonBackend) -> None:
    a = backend.asarray([[1, 2], [3, 4]])
    assert isinstance(a, torch.Tensor) and a.dtype == torch.float32
    assert backend.asarray([1, 2], dtype="int64").dtype == torch.int64
    b = backend.asarray(np.array([[0.5, 1.5]]), dtype="bfloat16")
    assert b.dtype == torch.bfloat16
    np.testing.assert_array_equal(backend.to_numpy(b), [[0.5, 1.5]])
    np.testing.assert_array_equal(backend.to_numpy(a), [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    "op", ["minmax_normalize", "row_sum", "row_mean", "row_min", "row_max", "row_std"]
)
@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
def test_row_operations_match_numpy(
    backend: TritonBackend, ref: Any, op: str, dtype: str, assert_matches: Any
) -> None:
    x = X.astype(dtype)
    out = getattr(backend, op)(backend.asarray(x, dtype=dtype))
    expected = getattr(ref, op)(x)
    assert str(out.dtype).removeprefix("torch.") == str(expected.dtype)
    assert_matches(out, expected, 0.0, 2e-6 if op in ("row_mean", "row_std") else 0.0)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_])
def test_integer_and_bool_input_normalises_to_float32(
    backend: TritonBackend, ref: Any, dtype: Any, assert_matches: Any
) -> None:
    x = np.array([[0, 1, 1], [1, 1, 1]], dtype=dtype)
    out = backend.minmax_normalize(x)
    assert out.dtype == torch.float32
    assert_matches(out, ref.minmax_normalize(x))
    assert_matches(backend.row_sum(x), ref.row_sum(x))


def test_segment_sum_and_partition_match_numpy(backend: TritonBackend, ref: Any) -> None:
    x = np.arange(18, dtype=np.float32).reshape(6, 3)
    offs = np.array([0, 0, 2, 6])
    np.testing.assert_array_equal(
        backend.to_numpy(backend.segment_sum(x, offs)), ref.segment_sum(x, offs)
    )
    keys = np.array([-5, 3, 8, 1, 0, 4, 4, 9])
    got = backend.partition(keys, 3)
    for g, e in zip(got, ref.partition(keys, 3), strict=True):
        assert g.tolist() == e.tolist()
    empty = backend.partition(np.array([]), 2)
    assert [t.tolist() for t in empty] == [[0, 0], [0, 0, 0], []]


def test_errors_name_the_operation(backend: TritonBackend) -> None:
    with pytest.raises(ValueError, match="minmax_normalize takes a 2-D tensor"):
        backend.minmax_normalize(np.zeros(3))
    with pytest.raises(ValueError, match="row_std takes a 2-D tensor"):
        backend.row_std(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="non-decreasing"):
        backend.segment_sum(np.zeros((3, 1)), [0, 2, 1])
    with pytest.raises(TypeError, match="keys must be integers"):
        backend.partition(np.array([1.5]), 2)
