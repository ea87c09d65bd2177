"""ops.segment_sum, interpreted, against pydotcompute's numpy backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

pytest.importorskip("triton")

from pydotcompute_triton.ops import segment_sum

pytestmark = pytest.mark.interpreter

NAN = float("nan")

# (dtype, atol, rtol): float32 accumulation in another order than numpy's.
DTYPES = [
    (torch.float32, 1e-5, 1e-5),
    (torch.float16, 1e-5, 1e-5),
    (torch.bfloat16, 1e-5, 1e-5),
]


@pytest.mark.parametrize(
    "offsets",
    [
        [0, 2, 5, 6],
        [0, 0, 3, 3, 6],  # empty segments first and in the middle
        [0, 6, 6, 6],  # empty segments at the end
        [1, 4],  # rows outside offsets[0]:offsets[-1] are ignored
        [2, 2],  # one empty segment
        [0],  # no segments
        [0, 1, 2, 3, 4, 5, 6],
        [3, 3, 3],
    ],
)
def test_edge_offsets_match_reference_exactly(
    offsets: list[int], ref: Any, assert_matches: Any
) -> None:
    x = torch.arange(18, dtype=torch.float32).reshape(6, 3) - 4.0
    out = segment_sum(x, torch.tensor(offsets))
    assert out.dtype == torch.float32 and out.shape == (len(offsets) - 1, 3)
    assert_matches(out, ref.segment_sum(x.numpy(), np.array(offsets)))


@pytest.mark.parametrize(
    ("rows", "width", "k"),
    [(1000, 7, 9), (1000, 64, 5), (300, 1000, 4), (40, 5000, 3), (7, 1, 3), (1, 100, 1)],
)
@pytest.mark.parametrize(("dtype", "atol", "rtol"), DTYPES)
def test_random_segments(
    rows: int,
    width: int,
    k: int,
    dtype: torch.dtype,
    atol: float,
    rtol: float,
    ref: Any,
    assert_matches: Any,
    to_host_f32: Any,
) -> None:
    gen = torch.Generator().manual_seed(rows + width + k)
    x = torch.randn((rows, width), generator=gen).to(dtype)
    offsets = torch.sort(torch.randint(0, rows + 1, (k + 1,), generator=gen)).values
    expected = ref.segment_sum(to_host_f32(x), offsets.numpy())
    longest = int((offsets[1:] - offsets[:-1]).max())
    assert_matches(segment_sum(x, offsets), expected, atol * max(longest, 1) ** 0.5, rtol)


def test_strided_x_and_offsets(ref: Any, assert_matches: Any) -> None:
    base = torch.randn((50, 300), generator=torch.Generator().manual_seed(1))
    x = base.t()[:, ::2]  # (300, 25), both strides unusual
    offsets = torch.tensor([0, 99, 10, 99, 150, 99, 300, 99])[::2]  # [0, 10, 150, 300]
    assert offsets.stride(0) == 2
    expected = ref.segment_sum(x.numpy(), offsets.numpy())
    assert_matches(segment_sum(x, offsets), expected, 1e-4, 1e-5)


def test_int32_offsets_are_accepted(ref: Any, assert_matches: Any) -> None:
    x = torch.ones((5, 2))
    out = segment_sum(x, torch.tensor([0, 2, 5], dtype=torch.int32))
    assert out.tolist() == [[2.0, 2.0], [3.0, 3.0]]


def test_nan_stays_in_its_segment() -> None:
    x = torch.tensor([[1.0], [NAN], [2.0], [3.0]])
    out = segment_sum(x, torch.tensor([0, 2, 4]))
    assert out[0].isnan().all() and out[1].tolist() == [5.0]


def test_width_zero_and_empty_batch() -> None:
    assert segment_sum(torch.zeros((4, 0)), torch.tensor([0, 1, 4])).shape == (2, 0)
    out = segment_sum(torch.zeros((0, 3), dtype=torch.float16), torch.tensor([0, 0, 0]))
    assert out.shape == (2, 3) and out.eq(0).all() and out.dtype == torch.float32


def test_unchecked_offsets_are_clamped_like_slices() -> None:
    x = torch.arange(1.0, 7.0)[:, None]  # 1..6
    out = segment_sum(x, torch.tensor([4, 2, 9]), check=False)
    assert out.tolist() == [[0.0], [3.0 + 4 + 5 + 6]]  # x[4:2] empty, x[2:9] -> x[2:6]


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(data=st.data(), rows=st.integers(0, 20), width=st.integers(0, 4))
def test_random_small_segments_exactly(
    data: st.DataObject, rows: int, width: int, ref: Any, assert_matches: Any
) -> None:
    x = data.draw(hnp.arrays(np.float32, (rows, width), elements=st.integers(-100, 100)))
    cuts = sorted(data.draw(st.lists(st.integers(0, rows), min_size=1, max_size=8)))
    out = segment_sum(torch.from_numpy(x), torch.tensor(cuts))
    assert_matches(out, ref.segment_sum(x, np.array(cuts)))


@pytest.mark.parametrize(
    ("offsets", "exc", "match"),
    [
        (torch.tensor([], dtype=torch.int64), ValueError, "at least one entry"),
        (torch.tensor([[0, 1]]), ValueError, "at least one entry"),
        (torch.tensor([0.0, 1.0]), ValueError, "must be integers"),
        (torch.tensor([-1, 2]), ValueError, r"non-decreasing and within \[0, 6\]"),
        (torch.tensor([0, 7]), ValueError, "non-decreasing and within"),
        (torch.tensor([0, 3, 2]), ValueError, r"got \[0, 3, 2\]"),
        ([0, 1], TypeError, "segment_sum offsets must be a torch.Tensor; got list"),
    ],
)
def test_rejects_bad_offsets(offsets: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        segment_sum(torch.zeros((6, 2)), offsets)


def test_rejects_bad_x() -> None:
    with pytest.raises(ValueError, match=r"segment_sum takes a 2-D tensor"):
        segment_sum(torch.zeros(6), torch.tensor([0, 1]))
