"""The public names of pydotcompute_triton and pydotcompute_triton.ops, pinned."""

from __future__ import annotations

import pydotcompute_triton
import pytest


def test_package_exports() -> None:
    assert sorted(pydotcompute_triton.__all__) == [
        "CapturedStep",
        "DeviceRing",
        "DeviceRingStatistics",
        "TorchBackend",
        "TritonBackend",
        "TritonUnavailableError",
        "triton_unavailable_reason",
    ]
    for name in pydotcompute_triton.__all__:
        assert getattr(pydotcompute_triton, name).__module__.startswith("pydotcompute_triton.")
    assert set(pydotcompute_triton.__all__) <= set(dir(pydotcompute_triton))


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        pydotcompute_triton.Nope  # noqa: B018


def test_ops_exports() -> None:
    ops = pytest.importorskip("pydotcompute_triton.ops")
    assert sorted(ops.__all__) == [
        "minmax_normalize",
        "normalize_stats",
        "partition",
        "row_max",
        "row_mean",
        "row_min",
        "row_range",
        "row_std",
        "row_sum",
        "row_var",
        "segment_sum",
    ]


def test_errors_belong_to_the_pydotcompute_vocabulary() -> None:
    from pydotcompute import RingKernelError

    assert issubclass(pydotcompute_triton.TritonUnavailableError, RingKernelError)
    assert issubclass(pydotcompute_triton.TritonUnavailableError, RuntimeError)
