"""TorchBackend on the CPU against pydotcompute's numpy backend (no Triton involved)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pydotcompute.stage import ComputeBackend
from pydotcompute_triton import TorchBackend

NAN, INF = float("nan"), float("inf")
B = TorchBackend("cpu")
ROW_OPS = ["minmax_normalize", "row_sum", "row_mean", "row_min", "row_max", "row_std"]
REDUCTIONS = ["sum", "mean", "min", "max", "std"]

EDGE_ROWS = [
    [1.0, 2.0, 3.0, 4.0, 5.0],
    [5.0, 5.0, 5.0, 5.0, 5.0],
    [-3.0, 0.0, 3.0, 1.5, -1.5],
    [NAN, 1.0, 3.0, 2.0, NAN],
    [NAN, NAN, NAN, NAN, NAN],
    [NAN, 7.0, NAN, NAN, NAN],
    [-INF, 0.0, 1.0, 2.0, 3.0],
    [INF, INF, INF, INF, INF],
    [-INF, INF, 0.0, 1.0, NAN],
    [1e-30, 2e-30, 3e-30, 4e-30, 5e-30],
    [-3e38, 3e38, 0.0, 1.0, 2.0],
]


def test_satisfies_the_protocol() -> None:
    assert isinstance(B, ComputeBackend)
    assert B.name == "torch" and B.device == torch.device("cpu")
    assert repr(B) == "TorchBackend(device='cpu')"


def test_default_device_follows_cuda_availability() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert TorchBackend().device.type == expected


def test_asarray_and_to_numpy_round_trip() -> None:
    a = B.asarray([[1, 2], [3, 4]])
    assert a.dtype == torch.float32 and a.shape == (2, 2)
    assert B.asarray([1, 2], dtype="int64").dtype == torch.int64
    assert B.asarray(torch.ones(2, dtype=torch.float64)).dtype == torch.float32
    bf = B.asarray([[0.25, 3.0]], dtype="bfloat16")
    assert bf.dtype == torch.bfloat16
    out = B.to_numpy(bf)
    assert out.dtype == np.float32 and out.tolist() == [[0.25, 3.0]]
    with pytest.raises(ValueError, match="asarray dtype must name a torch dtype"):
        B.asarray([1], dtype="float17")


def test_minmax_edge_rows_exactly(ref: Any, assert_matches: Any) -> None:
    x = np.array(EDGE_ROWS, dtype=np.float32)
    assert_matches(B.minmax_normalize(x), ref.minmax_normalize(x))


@pytest.mark.parametrize("op", REDUCTIONS)
def test_reductions_on_edge_rows(op: str, ref: Any, assert_matches: Any) -> None:
    x = np.array(EDGE_ROWS[:10], dtype=np.float32)
    assert_matches(getattr(B, f"row_{op}")(x), getattr(ref, f"row_{op}")(x), 1e-20, 2e-6)


@pytest.mark.parametrize(
    ("dtype", "atol", "rtol"),
    [
        (torch.float32, 0.0, 0.0),
        (torch.float16, 0.0, 0.0),
        (torch.bfloat16, 0.0, 0.0),
        (torch.float64, 0.0, 0.0),
    ],
)
def test_minmax_keeps_float_dtypes(
    dtype: torch.dtype, atol: float, rtol: float, ref: Any, assert_matches: Any
) -> None:
    x = (torch.randn((7, 33), generator=torch.Generator().manual_seed(0)) * 4).to(dtype)
    out = B.minmax_normalize(x)
    assert out.dtype == dtype
    expected = torch.from_numpy(ref.minmax_normalize(x.to(torch.float32).numpy())).to(dtype)
    assert_matches(out, expected.to(torch.float64).numpy(), atol, rtol)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_])
def test_minmax_of_integers_and_bools_is_float32(dtype: Any, ref: Any, assert_matches: Any) -> None:
    x = np.array([[0, 1, 1], [1, 1, 1]], dtype=dtype)
    out = B.minmax_normalize(x)
    assert out.dtype == torch.float32
    assert_matches(out, ref.minmax_normalize(x))


@pytest.mark.parametrize("op", ROW_OPS)
@pytest.mark.parametrize("shape", [(0, 5), (3, 0), (0, 0), (1, 1)])
def test_empty_and_width_zero(
    op: str, shape: tuple[int, int], ref: Any, assert_matches: Any
) -> None:
    x = np.arange(shape[0] * shape[1], dtype=np.float32).reshape(shape)
    out = getattr(B, op)(x)
    expected = getattr(ref, op)(x)
    assert tuple(out.shape) == expected.shape
    assert_matches(out, expected)


@pytest.mark.parametrize("op", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64])
def test_reductions_return_float32(op: str, dtype: Any, ref: Any, assert_matches: Any) -> None:
    x = np.array([[1, 2, 3, 4], [5, 5, 5, 5], [-2, 0, 2, 8]], dtype=dtype)
    out = getattr(B, f"row_{op}")(x)
    assert out.dtype == torch.float32
    assert_matches(out, getattr(ref, f"row_{op}")(x), 0.0, 1e-6)


def test_strided_tensors(ref: Any, assert_matches: Any) -> None:
    x = torch.randn((40, 90), generator=torch.Generator().manual_seed(2)).t()[::2]
    assert_matches(B.minmax_normalize(x), ref.minmax_normalize(x.numpy()))
    assert_matches(B.row_std(x), ref.row_std(x.numpy()), 1e-6, 1e-5)


specials = st.one_of(
    st.floats(width=32, allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, -1.0, NAN]),
)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(
    x=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=9),
        elements=specials,
    )
)
def test_minmax_random_arrays_exactly(
    x: np.ndarray[Any, Any], ref: Any, assert_matches: Any
) -> None:
    assert_matches(B.minmax_normalize(x), ref.minmax_normalize(x))


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    x=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=12),
        elements=st.floats(-1e6, 1e6, width=32),
    )
)
def test_reductions_random_arrays(x: np.ndarray[Any, Any], ref: Any, assert_matches: Any) -> None:
    scale = float(np.abs(x).max(initial=0.0)) * max(x.shape[1], 1)
    for op in REDUCTIONS:
        expected = getattr(ref, f"row_{op}")(x)
        assert_matches(getattr(B, f"row_{op}")(x), expected, 1e-6 * scale + 1e-30, 1e-5)


@pytest.mark.parametrize(
    "offsets",
    [
        [0, 2, 5, 6],
        [0, 0, 3, 3, 6],
        [0, 6, 6, 6],
        [1, 4],
        [2, 2],
        [0],
        [0, 1, 2, 3, 4, 5, 6],
        [3, 3, 3],
    ],
)
def test_segment_sum_matches_reference(offsets: list[int], ref: Any, assert_matches: Any) -> None:
    x = np.arange(18, dtype=np.float32).reshape(6, 3) - 4.0
    out = B.segment_sum(x, np.array(offsets))
    assert out.dtype == torch.float32 and tuple(out.shape) == (len(offsets) - 1, 3)
    assert_matches(out, ref.segment_sum(x, np.array(offsets)))


def test_segment_sum_edges() -> None:
    assert tuple(B.segment_sum(np.zeros((4, 0)), [0, 1, 4]).shape) == (2, 0)
    assert B.segment_sum(np.zeros((0, 3)), [0, 0, 0]).tolist() == [[0.0] * 3] * 2
    out = B.segment_sum(np.array([[1.0], [NAN], [2.0], [3.0]], dtype=np.float32), [0, 2, 4])
    assert out[0].isnan().all() and out[1].tolist() == [5.0]


@pytest.mark.parametrize(
    ("offsets", "match"),
    [
        ([], "at least one entry"),
        ([[0, 1]], "at least one entry"),
        ([0.0, 1.0], "must be integers"),
        ([-1, 2], "non-decreasing and within"),
        ([0, 7], "non-decreasing and within"),
        ([0, 3, 2], "non-decreasing and within"),
    ],
)
def test_segment_sum_rejects_bad_offsets(offsets: list[Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        B.segment_sum(np.zeros((6, 2)), np.array(offsets, dtype=None if offsets else np.int64))


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(data=st.data(), rows=st.integers(0, 20), width=st.integers(0, 4))
def test_segment_sum_random(
    data: st.DataObject, rows: int, width: int, ref: Any, assert_matches: Any
) -> None:
    x = data.draw(hnp.arrays(np.float32, (rows, width), elements=st.integers(-100, 100)))
    cuts = sorted(data.draw(st.lists(st.integers(0, rows), min_size=1, max_size=8)))
    assert_matches(B.segment_sum(x, np.array(cuts)), ref.segment_sum(x, np.array(cuts)))


@pytest.mark.parametrize(
    ("keys", "n"),
    [
        ([5, 3, 8, 1, 0, 4, 4, 9], 3),
        ([-1, -2, -3, -4, 7, -7], 4),
        ([3, 3, 3, 3], 2),
        ([10, 20, 30], 1),
        ([], 3),
        ([2**62, -(2**62), 123456789012], 7),
    ],
)
def test_partition_matches_reference(keys: list[int], n: int, ref: Any) -> None:
    got = B.partition(np.array(keys, dtype=np.int64), n)
    for g, e in zip(got, ref.partition(np.array(keys, dtype=np.int64), n), strict=True):
        assert g.dtype == torch.int64 and g.tolist() == e.tolist()


def test_partition_unsigned_small_and_empty_keys() -> None:
    counts, _, perm = B.partition(np.array([2**64 - 1, 4, 5], dtype=np.uint64), 5)
    assert counts.tolist() == [2, 0, 0, 0, 1] and perm.tolist() == [0, 2, 1]
    assert B.partition(np.array([-1, 1], dtype=np.int8), 300)[0][[1, 299]].tolist() == [1, 1]
    assert [t.tolist() for t in B.partition(np.array([]), 2)] == [[0, 0], [0, 0, 0], []]


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(keys=st.lists(st.integers(-(2**40), 2**40), max_size=40), n=st.integers(1, 9))
def test_partition_random(keys: list[int], n: int, ref: Any) -> None:
    arr = np.array(keys, dtype=np.int64)
    for g, e in zip(B.partition(arr, n), ref.partition(arr, n), strict=True):
        assert g.tolist() == e.tolist()


@pytest.mark.parametrize(
    ("keys", "n", "exc", "match"),
    [
        ([1, 2], 0, ValueError, "at least 1"),
        ([1, 2], 2.0, TypeError, "n must be an int"),
        ([1, 2], True, TypeError, "n must be an int"),
        ([1.5, 2.0], 2, TypeError, "keys must be integers"),
        ([[1, 2]], 2, ValueError, "keys must be 1-D"),
    ],
)
def test_partition_rejects_bad_arguments(
    keys: Any, n: Any, exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        B.partition(np.array(keys), n)


@pytest.mark.parametrize("op", ROW_OPS)
def test_row_operations_reject_non_2d(op: str) -> None:
    with pytest.raises(ValueError, match=rf"{op} takes a 2-D tensor"):
        getattr(B, op)(np.zeros(5))
