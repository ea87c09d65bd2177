"""ops.minmax_normalize, interpreted, against pydotcompute's numpy backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

pytest.importorskip("triton")

from pydotcompute_triton.ops import minmax_normalize
from pydotcompute_triton.ops._utils import cdiv, row_tile

pytestmark = pytest.mark.interpreter

NAN, INF = float("nan"), float("inf")

# (dtype, atol, rtol). float32 and float16 are exact: the kernel uses the reference's
# formula with correctly rounded division and no FMA contraction. bfloat16 allows one
# ulp: the interpreter truncates float32 -> bfloat16 where a GPU rounds to nearest.
DTYPES = [
    (torch.float32, 0.0, 0.0),
    (torch.float16, 0.0, 0.0),
    (torch.bfloat16, 1e-5, 1.6e-2),
]
ROWS = [0, 1, 7, 1000]
# 4097 is one past the largest single-pass block; 9000 loops over three column blocks.
WIDTHS = [1, 7, 64, 100, 1000, 4097, 9000]
MAX_PROGRAMS = 64  # keep interpreted grids small


def shapes() -> list[tuple[int, int]]:
    """Every (rows, width) of ROWS x WIDTHS whose grid stays within MAX_PROGRAMS."""
    return [(r, w) for r in ROWS for w in WIDTHS if cdiv(r, row_tile(w).block_m) <= MAX_PROGRAMS]


def test_the_shape_list_covers_both_paths_and_large_batches() -> None:
    chosen = shapes()
    assert any(not row_tile(w).single_pass for _, w in chosen)
    assert any(r == 1000 for r, _ in chosen)
    assert all(w in {s[1] for s in chosen} for w in WIDTHS)


def _expected(x: torch.Tensor, ref: Any, to_host: Callable[[torch.Tensor], Any]) -> Any:
    """The reference result (computed in float32, as the policy says) rounded to x's dtype."""
    out32 = torch.from_numpy(ref.minmax_normalize(to_host(x)))
    return out32.to(x.dtype).to(torch.float32).numpy()


@pytest.mark.parametrize(("rows", "width"), shapes())
@pytest.mark.parametrize(("dtype", "atol", "rtol"), DTYPES)
def test_matches_reference(
    rows: int,
    width: int,
    dtype: torch.dtype,
    atol: float,
    rtol: float,
    ref: Any,
    assert_matches: Any,
    to_host_f32: Any,
) -> None:
    gen = torch.Generator().manual_seed(rows * 10_007 + width)
    x = (torch.randn((rows, width), generator=gen) * 3 + 1).to(dtype)
    out = minmax_normalize(x)
    assert out.dtype == dtype and out.shape == (rows, width) and out.is_contiguous()
    assert_matches(out, _expected(x, ref, to_host_f32), atol, rtol)


EDGE_ROWS = [
    [1.0, 2.0, 3.0, 4.0, 5.0],
    [5.0, 5.0, 5.0, 5.0, 5.0],  # constant -> zeros
    [NAN, 1.0, 3.0, 2.0, NAN],  # NaN stays NaN, the rest uses the non-NaN range
    [NAN, NAN, NAN, NAN, NAN],  # all NaN -> all NaN
    [NAN, 7.0, NAN, NAN, NAN],  # one non-NaN value: degenerate
    [-INF, 0.0, 1.0, 2.0, 3.0],  # infinite range: IEEE arithmetic of the formula
    [INF, INF, INF, INF, INF],  # inf - inf range: degenerate -> zeros
    [-INF, INF, 0.0, 1.0, NAN],
    [0.0, INF, 1.0, 2.0, 3.0],
    [-3e38, 3e38, 0.0, 1.0, 2.0],  # range overflows to inf
    [1e-30, 2e-30, 3e-30, 4e-30, 5e-30],  # tiny positive range
]


@pytest.mark.parametrize("width_repeat", [1, 1000])  # single pass; looped (5000 wide)
def test_edge_rows_match_reference_exactly(
    width_repeat: int, ref: Any, assert_matches: Any
) -> None:
    x = torch.tensor(EDGE_ROWS, dtype=torch.float32).repeat(1, width_repeat)
    assert_matches(minmax_normalize(x), ref.minmax_normalize(x.numpy()))


def test_policy_values_spelled_out() -> None:
    out = minmax_normalize(torch.tensor(EDGE_ROWS[:5], dtype=torch.float32))
    assert out[0].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert out[1].tolist() == [0.0] * 5
    assert out[2, 1:4].tolist() == [0.0, 1.0, 0.5]
    assert out[2, [0, 4]].isnan().all() and out[3].isnan().all()
    assert out[4, 1].item() == 0.0 and out[4, [0, 2, 3, 4]].isnan().all()


@pytest.mark.parametrize(("dtype", "atol", "rtol"), DTYPES)
def test_constant_rows_of_every_dtype_give_zeros(
    dtype: torch.dtype, atol: float, rtol: float
) -> None:
    x = torch.full((3, 70), -2.5, dtype=dtype)
    assert minmax_normalize(x).eq(0).all()


@pytest.mark.parametrize(
    "view",
    [
        pytest.param(lambda b: b[:, ::3], id="column-stride-3"),
        pytest.param(lambda b: b.t(), id="transposed"),
        pytest.param(lambda b: b[5:40:2, 7:], id="sliced-rows-and-columns"),
        pytest.param(lambda b: b.t()[:, ::2], id="transposed-strided"),
    ],
)
@pytest.mark.parametrize("width", [60, 6000])
def test_strided_inputs(view: Any, width: int, ref: Any, assert_matches: Any) -> None:
    base = torch.randn((48, width), generator=torch.Generator().manual_seed(width))
    x = view(base)
    assert not x.is_contiguous()
    if cdiv(x.shape[0], row_tile(x.shape[1]).block_m) > MAX_PROGRAMS:
        x = x[: MAX_PROGRAMS * row_tile(x.shape[1]).block_m]
    assert_matches(minmax_normalize(x), ref.minmax_normalize(x.numpy()))


@pytest.mark.parametrize("shape", [(0, 5), (3, 0), (0, 0)])
def test_empty_inputs_return_empty(shape: tuple[int, int]) -> None:
    out = minmax_normalize(torch.empty(shape, dtype=torch.float16))
    assert out.shape == shape and out.dtype == torch.float16


def test_input_is_not_modified() -> None:
    x = torch.tensor([[3.0, 1.0, 2.0]])
    minmax_normalize(x)
    assert x.tolist() == [[3.0, 1.0, 2.0]]


specials = st.one_of(
    st.floats(width=32, allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, -1.0, NAN, INF, -INF]),
)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    x=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=9),
        elements=specials,
    )
)
def test_random_arrays_with_special_values(
    x: np.ndarray[Any, Any], ref: Any, assert_matches: Any
) -> None:
    assert_matches(minmax_normalize(torch.from_numpy(x)), ref.minmax_normalize(x))


@pytest.mark.parametrize(
    ("bad", "exc", "match"),
    [
        (torch.zeros(3), ValueError, r"minmax_normalize takes a 2-D tensor .*got shape \(3,\)"),
        (torch.zeros((2, 2, 2)), ValueError, r"got shape \(2, 2, 2\)"),
        (torch.zeros((2, 2), dtype=torch.float64), TypeError, "got torch.float64"),
        (torch.zeros((2, 2), dtype=torch.int32), TypeError, "got torch.int32"),
        ([[1.0, 2.0]], TypeError, "minmax_normalize input must be a torch.Tensor; got list"),
    ],
)
def test_rejects_bad_input(bad: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        minmax_normalize(bad)
