"""TorchBackend on the CPU: what the conformance suite (test_conformance_torch_triton.py) does not
cover, namely the device, bfloat16, strided tensors, and properties over random inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pydotcompute.backend import BackendCapabilities, ComputeBackend
from pydotcompute_triton import TorchBackend

NAN, INF = float("nan"), float("inf")
B = TorchBackend("cpu")
REDUCTIONS = ["sum", "mean", "min", "max", "std", "var", "range"]


def test_satisfies_the_protocol_and_offers_device_rings() -> None:
    assert isinstance(B, ComputeBackend)
    assert B.name == "torch" and B.device == torch.device("cpu")
    assert B.capabilities == BackendCapabilities(device_rings=True)
    assert repr(B) == "TorchBackend(device='cpu')"


def test_default_device_follows_cuda_availability() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert TorchBackend().device.type == expected


def test_bfloat16_round_trips_through_float32() -> None:
    assert B.asarray(torch.ones(2, dtype=torch.float64)).dtype == torch.float32
    bf = B.asarray([[0.25, 3.0]], dtype="bfloat16")
    assert bf.dtype == torch.bfloat16
    out = B.to_numpy(bf)
    assert out.dtype == np.float32 and out.tolist() == [[0.25, 3.0]]
    with pytest.raises(ValueError, match="asarray dtype must name a torch dtype"):
        B.asarray([1], dtype="float17")


def test_bfloat16_keeps_its_dtype_through_minmax_and_clip(ref: Any, assert_matches: Any) -> None:
    x = (torch.randn((7, 33), generator=torch.Generator().manual_seed(0)) * 4).to(torch.bfloat16)
    host = x.to(torch.float32).numpy()
    out = B.minmax_normalize(x)
    assert out.dtype == torch.bfloat16
    expected = torch.from_numpy(ref.minmax_normalize(host)).to(torch.bfloat16)
    assert_matches(out, expected.to(torch.float64).numpy())
    clipped = B.clip(x, -1.0, 1e6)  # 1e6 is finite in bfloat16: the bound is kept
    assert clipped.dtype == torch.bfloat16
    assert_matches(clipped, np.clip(host, -1.0, 1e6))


def test_strided_tensors(ref: Any, assert_matches: Any) -> None:
    x = torch.randn((40, 90), generator=torch.Generator().manual_seed(2)).t()[::2]
    assert_matches(B.minmax_normalize(x), ref.minmax_normalize(x.numpy()))
    assert_matches(B.row_std(x), ref.row_std(x.numpy()), 1e-6, 1e-5)
    assert_matches(B.take_rows(x, [3, 1]), x.numpy()[[3, 1]])


def test_take_rows_gathers_where_the_rows_are() -> None:
    x = torch.arange(12, dtype=torch.float32).reshape(4, 3)
    index = torch.tensor([2, 0])
    assert B.take_rows(x, index).tolist() == [[6, 7, 8], [0, 1, 2]]
    host = B.take_rows(x.numpy(), index)
    assert type(host) is np.ndarray and host.tolist() == [[6, 7, 8], [0, 1, 2]]


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
def test_minmax_and_clip_random_arrays_exactly(
    x: np.ndarray[Any, Any], ref: Any, assert_matches: Any
) -> None:
    assert_matches(B.minmax_normalize(x), ref.minmax_normalize(x))
    assert_matches(B.clip(x, -1.5, 2.0), ref.clip(x, -1.5, 2.0))


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
    reductions = {
        "sum": (B.row_sum, ref.row_sum),
        "mean": (B.row_mean, ref.row_mean),
        "min": (B.row_min, ref.row_min),
        "max": (B.row_max, ref.row_max),
        "std": (B.row_std, ref.row_std),
        "var": (B.row_var, ref.row_var),
        "range": (B.row_range, ref.row_range),
    }
    assert sorted(reductions) == sorted(REDUCTIONS)
    for op, (mine, theirs) in reductions.items():
        atol = 1e-6 * (scale * scale if op == "var" else scale) + 1e-30
        assert_matches(mine(x), theirs(x), atol, 1e-5)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(data=st.data(), rows=st.integers(0, 20), width=st.integers(0, 4))
def test_segment_sum_and_mean_random(
    data: st.DataObject, rows: int, width: int, ref: Any, assert_matches: Any
) -> None:
    x = data.draw(hnp.arrays(np.float32, (rows, width), elements=st.integers(-100, 100)))
    cuts = np.array(sorted(data.draw(st.lists(st.integers(0, rows), min_size=1, max_size=8))))
    assert_matches(B.segment_sum(x, cuts), ref.segment_sum(x, cuts))
    assert_matches(B.segment_mean(x, cuts), ref.segment_mean(x, cuts))


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(keys=st.lists(st.integers(-(2**40), 2**40), max_size=40), n=st.integers(1, 9))
def test_partition_random(keys: list[int], n: int, ref: Any) -> None:
    arr = np.array(keys, dtype=np.int64)
    for g, e in zip(B.partition(arr, n), ref.partition(arr, n), strict=True):
        assert g.tolist() == e.tolist()


@pytest.mark.parametrize("op", ["minmax_normalize", *(f"row_{r}" for r in REDUCTIONS), "take_rows"])
def test_errors_name_the_operation(op: str) -> None:
    call = getattr(B, op)
    args = (np.zeros(5), [0]) if op == "take_rows" else (np.zeros(5),)
    with pytest.raises(ValueError, match=rf"{op} takes a 2-D"):
        call(*args)
