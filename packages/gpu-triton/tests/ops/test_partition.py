"""ops.partition, interpreted, against pydotcompute's numpy backend (exact: integers)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("triton")

from pydotcompute_triton.ops import partition
from pydotcompute_triton.ops.partition import BLOCK

pytestmark = pytest.mark.interpreter


def check(keys: torch.Tensor, n: int, ref: Any) -> tuple[list[int], list[int], list[int]]:
    """Run the kernel, compare with the reference, return the kernel's lists."""
    counts, offsets, perm = partition(keys, n)
    for t in (counts, offsets, perm):
        assert t.dtype == torch.int64 and t.device == keys.device
    # Widened for the reference: numpy's np.mod overflows when n exceeds a narrow key dtype.
    rc, ro, rp = ref.partition(keys.numpy().astype(np.int64), n)
    got = (counts.tolist(), offsets.tolist(), perm.tolist())
    assert got == (rc.tolist(), ro.tolist(), rp.tolist())
    return got


@pytest.mark.parametrize(
    ("keys", "n"),
    [
        ([5, 3, 8, 1, 0, 4, 4, 9], 3),
        ([-1, -2, -3, -4, 7, -7], 4),  # negative keys land in [0, n)
        ([3, 3, 3, 3], 2),  # one bucket full, one empty: stability visible
        ([10, 20, 30], 1),
        ([2**62, -(2**62), 123456789012, -(2**63), 2**63 - 1], 7),
        ([7], 1000),  # more buckets than keys
    ],
)
def test_edge_cases(keys: list[int], n: int, ref: Any) -> None:
    check(torch.tensor(keys, dtype=torch.int64), n, ref)


def test_stable_order_spelled_out(ref: Any) -> None:
    counts, offsets, perm = check(torch.tensor([1, 0, 1, 2, 0]), 4, ref)
    assert counts == [2, 2, 1, 0] and offsets == [0, 2, 4, 5, 5] and perm == [1, 4, 0, 2, 3]


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8])
@pytest.mark.parametrize(("n_keys", "n"), [(1000, 7), (BLOCK, 3), (BLOCK + 1, 300), (130, 1)])
def test_random_keys_across_blocks(dtype: torch.dtype, n_keys: int, n: int, ref: Any) -> None:
    gen = torch.Generator().manual_seed(n_keys * 31 + n)
    info = torch.iinfo(dtype)
    keys = torch.randint(info.min, info.max, (n_keys,), generator=gen, dtype=torch.int64).to(dtype)
    check(keys, n, ref)


def test_uint64_keys_above_int64(ref: Any) -> None:
    keys = torch.tensor(np.array([2**64 - 1, 4, 5, 2**63], dtype=np.uint64))
    counts, _, perm = partition(keys, 5)
    assert counts.tolist() == [2, 0, 0, 1, 1]  # 2**64-1 = 0, 2**63 = 3 (mod 5)
    assert perm.tolist() == [0, 2, 3, 1]


def test_strided_keys(ref: Any) -> None:
    keys = torch.arange(300, dtype=torch.int64).flip(0)[::3]
    assert keys.stride(0) == -3 or not keys.is_contiguous()
    check(keys, 4, ref)


def test_empty_keys() -> None:
    counts, offsets, perm = partition(torch.empty(0, dtype=torch.int64), 3)
    assert counts.tolist() == [0, 0, 0] and offsets.tolist() == [0, 0, 0, 0]
    assert perm.shape == (0,)


def test_offsets_feed_segment_sum() -> None:
    from pydotcompute_triton.ops import segment_sum

    keys = torch.tensor([1, 0, 1, 2, 0])
    x = torch.tensor([[1.0], [10.0], [100.0], [1000.0], [10000.0]])
    _, offsets, perm = partition(keys, 4)
    assert segment_sum(x[perm], offsets).tolist() == [[10010.0], [101.0], [1000.0], [0.0]]


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(keys=st.lists(st.integers(-(2**40), 2**40), max_size=150), n=st.integers(1, 9))
def test_random_keys(keys: list[int], n: int, ref: Any) -> None:
    check(torch.tensor(keys, dtype=torch.int64), n, ref)


@pytest.mark.parametrize(
    ("keys", "n", "exc", "match"),
    [
        (torch.tensor([1, 2]), 0, ValueError, "n must be at least 1; got 0"),
        (torch.tensor([1, 2]), -2, ValueError, "at least 1"),
        (torch.tensor([1, 2]), 2.0, TypeError, "partition n must be an int; got float"),
        (torch.tensor([1, 2]), True, TypeError, "n must be an int; got bool"),
        (torch.tensor([1.5, 2.0]), 2, TypeError, "keys must be integers; got dtype torch.float32"),
        (torch.tensor([True]), 2, TypeError, "keys must be integers"),
        (torch.tensor([[1, 2]]), 2, ValueError, r"keys must be 1-D; got shape \(1, 2\)"),
        ([1, 2], 2, TypeError, "partition keys must be a torch.Tensor; got list"),
    ],
)
def test_rejects_bad_arguments(keys: Any, n: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        partition(keys, n)
