"""ops.row_sum/mean/min/max/std, interpreted, against pydotcompute's numpy backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

pytest.importorskip("triton")

from pydotcompute_triton import ops
from pydotcompute_triton.ops._utils import cdiv, row_tile
from pydotcompute_triton.ops.row_reduce import REDUCTIONS

pytestmark = pytest.mark.interpreter

NAN, INF = float("nan"), float("inf")

# (dtype, atol, rtol) for sums of standard-normal rows (|sum| ~ sqrt(width)): float32
# summation order differs from numpy's pairwise sum. Inputs are upcast exactly, so the
# tolerance does not depend on the input dtype; min and max are checked exactly.
DTYPES = [
    (torch.float32, 1e-5, 1e-5),
    (torch.float16, 1e-5, 1e-5),
    (torch.bfloat16, 1e-5, 1e-5),
]
ROWS = [1, 7, 1000]
WIDTHS = [1, 7, 64, 100, 1000, 4097, 9000]
MAX_PROGRAMS = 64


def shapes() -> list[tuple[int, int]]:
    return [(r, w) for r in ROWS for w in WIDTHS if cdiv(r, row_tile(w).block_m) <= MAX_PROGRAMS]


def reduce(op: str, x: torch.Tensor) -> torch.Tensor:
    out: torch.Tensor = getattr(ops, f"row_{op}")(x)
    return out


@pytest.mark.parametrize(("rows", "width"), shapes())
@pytest.mark.parametrize(("dtype", "atol", "rtol"), DTYPES)
@pytest.mark.parametrize("op", REDUCTIONS)
def test_matches_reference(
    op: str,
    rows: int,
    width: int,
    dtype: torch.dtype,
    atol: float,
    rtol: float,
    ref: Any,
    assert_matches: Any,
    to_host_f32: Any,
) -> None:
    gen = torch.Generator().manual_seed(rows * 7919 + width)
    x = torch.randn((rows, width), generator=gen).to(dtype)
    out = reduce(op, x)
    assert out.dtype == torch.float32 and out.shape == (rows,)
    expected = getattr(ref, f"row_{op}")(to_host_f32(x))
    exact = op in ("min", "max")
    scale = width**0.5 if op == "sum" else 1.0
    assert_matches(out, expected, 0.0 if exact else atol * scale, 0.0 if exact else rtol)


EDGE_ROWS = [
    [1.0, 2.0, 3.0, 4.0, 5.0],
    [5.0, 5.0, 5.0, 5.0, 5.0],
    [NAN, 1.0, 3.0, 2.0, NAN],
    [NAN, NAN, NAN, NAN, NAN],
    [-INF, 0.0, 1.0, 2.0, 3.0],
    [INF, INF, INF, INF, INF],
    [-INF, INF, 0.0, 1.0, 2.0],
    [-3e38, 3e38, 3e38, 1.0, 2.0],  # the sum overflows to inf
    [1e-30, 2e-30, 3e-30, 4e-30, 5e-30],
]


@pytest.mark.parametrize("width_repeat", [1, 1000])  # single pass; looped (5000 wide)
@pytest.mark.parametrize("op", REDUCTIONS)
def test_edge_rows(op: str, width_repeat: int, ref: Any, assert_matches: Any) -> None:
    x = torch.tensor(EDGE_ROWS, dtype=torch.float32).repeat(1, width_repeat)
    expected = getattr(ref, f"row_{op}")(x.numpy())
    # atol: the squares of the 1e-30 row underflow to 0 in std, in both.
    assert_matches(reduce(op, x), expected, 1e-20, 2e-6)


@pytest.mark.parametrize("op", REDUCTIONS)
def test_nan_anywhere_gives_nan(op: str) -> None:
    x = torch.zeros((3, 5000))
    x[0, 0] = NAN
    x[1, 4999] = NAN  # in the last (partial) column block
    x[2, 4096] = NAN
    assert reduce(op, x).isnan().all()


@pytest.mark.parametrize("op", REDUCTIONS)
def test_width_zero_rows(op: str) -> None:
    out = reduce(op, torch.zeros((4, 0), dtype=torch.bfloat16))
    assert out.dtype == torch.float32 and out.shape == (4,)
    if op == "sum":
        assert out.eq(0).all()
    else:
        assert out.isnan().all()


@pytest.mark.parametrize("op", REDUCTIONS)
def test_empty_batch(op: str) -> None:
    out = reduce(op, torch.zeros((0, 9)))
    assert out.shape == (0,) and out.dtype == torch.float32


def test_std_is_population_std() -> None:
    x = torch.tensor([[2, 4, 4, 4, 5, 5, 7, 9], [1, 1, 1, 1, 1, 1, 1, 1]], dtype=torch.float32)
    assert ops.row_std(x).tolist() == [2.0, 0.0]


@pytest.mark.parametrize("op", REDUCTIONS)
def test_strided_input(op: str, ref: Any, assert_matches: Any) -> None:
    base = torch.randn((6000, 40), generator=torch.Generator().manual_seed(3))
    x = base.t()[::3, ::1]  # rows of 6000 with column stride 40: the looped path
    expected = getattr(ref, f"row_{op}")(x.numpy())
    assert_matches(reduce(op, x), expected, 1e-4, 1e-5)


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(
    x=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=12),
        elements=st.floats(-1e6, 1e6, width=32),
    )
)
def test_random_arrays(x: np.ndarray[Any, Any], ref: Any, assert_matches: Any) -> None:
    scale = float(np.abs(x).max(initial=0.0)) * max(x.shape[1], 1)
    for op in REDUCTIONS:
        expected = getattr(ref, f"row_{op}")(x)
        assert_matches(reduce(op, torch.from_numpy(x)), expected, 1e-6 * scale + 1e-30, 1e-5)


@pytest.mark.parametrize("op", REDUCTIONS)
def test_rejects_bad_input(op: str) -> None:
    with pytest.raises(ValueError, match=rf"row_{op} takes a 2-D tensor .*got shape \(5,\)"):
        reduce(op, torch.zeros(5))
    with pytest.raises(TypeError, match=rf"row_{op} takes float32, float16 or bfloat16"):
        reduce(op, torch.zeros((2, 2), dtype=torch.int64))
