"""The backend boundary: the conformance suite on the numpy backend, the suite catching
broken backends, and the protocol check a backend meets when a pipeline first asks for it."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from pydotcompute import PluginError
from pydotcompute.backend import (
    BackendCapabilities,
    BackendProtocolError,
    ComputeBackend,
    ConformanceCase,
    NumpyBackend,
    check_backend,
    conformance_cases,
    hookimpl,
)
from pydotcompute.compute import BACKEND_METHODS
from pydotcompute.plugins import create_plugin_manager

CASES = conformance_cases()
BY_NAME = {case.name: case for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_numpy_backend_conforms(case: ConformanceCase) -> None:
    case.run(NumpyBackend())


def test_case_names_are_unique_and_cover_every_method() -> None:
    assert len(BY_NAME) == len(CASES)
    for method in BACKEND_METHODS:
        assert any(name.startswith(method) for name in BY_NAME), method


def test_backend_methods_are_the_protocols_methods() -> None:
    declared = {
        name
        for name, member in vars(ComputeBackend).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }
    assert declared == set(BACKEND_METHODS)


def test_the_numpy_backend_declares_no_device_rings() -> None:
    backend = NumpyBackend()
    assert isinstance(backend, ComputeBackend)
    assert backend.capabilities == BackendCapabilities(device_rings=False)
    assert check_backend(backend) is backend


# -- the suite fails a backend that breaks a policy ----------------------------------------


class NaiveMinmax(NumpyBackend):
    """(x - min) / (max - min) with no care for constant rows or NaN."""

    name = "naive-minmax"

    def minmax_normalize(self, x: Any) -> Any:
        a = np.asarray(x, dtype=np.float32)
        with np.errstate(all="ignore"):
            lo = np.fmin.reduce(a, axis=1, keepdims=True)
            hi = np.fmax.reduce(a, axis=1, keepdims=True)
            return (a - lo) / (hi - lo)


class SampleStd(NumpyBackend):
    """ddof=1 instead of the population standard deviation."""

    name = "sample-std"

    def row_std(self, x: Any) -> Any:
        a = np.asarray(x, dtype=np.float32)
        if a.ndim != 2:
            raise ValueError("row_std takes a 2-D array")
        with np.errstate(all="ignore"):
            dev = a - a.sum(axis=1, keepdims=True) / np.float32(a.shape[1])
            return np.sqrt((dev * dev).sum(axis=1) / np.float32(a.shape[1] - 1))


class Float32Clip(NumpyBackend):
    """Clips, but always returns float32."""

    name = "float32-clip"

    def clip(self, x: Any, low: float, high: float) -> Any:
        return super().clip(x, low, high).astype(np.float32)


class LenientClip(NumpyBackend):
    """Accepts low > high (numpy's own clip does)."""

    name = "lenient-clip"

    def clip(self, x: Any, low: float, high: float) -> Any:
        return np.clip(np.asarray(x, dtype=np.float32), low, high)


class UnstablePartition(NumpyBackend):
    """Right buckets and counts, but each bucket's keys in reverse order."""

    name = "unstable-partition"

    def partition(self, keys: Any, n: int) -> Any:
        counts, offsets, perm = super().partition(keys, n)
        for b in range(n):
            perm[offsets[b] : offsets[b + 1]] = perm[offsets[b] : offsets[b + 1]][::-1].copy()
        return counts, offsets, perm


class ListToNumpy(NumpyBackend):
    """to_numpy hands back a list."""

    name = "list-to-numpy"

    def to_numpy(self, x: Any) -> Any:
        return np.asarray(x).tolist()


class TruncatingSum(NumpyBackend):
    """Adds in float16."""

    name = "float16-sum"

    def row_sum(self, x: Any) -> Any:
        return super().row_sum(np.asarray(x, dtype=np.float16).astype(np.float32))


@pytest.mark.parametrize(
    ("backend", "case", "says"),
    [
        (NaiveMinmax(), "minmax_normalize: the policy's values", "a constant row"),
        (SampleStd(), "row_std, row_var, row_range: the policy's values", "population std"),
        (SampleStd(), "row_std: random arrays with NaN and infinities", "row_std(random"),
        (
            Float32Clip(),
            "clip: floats keep their dtype, bounds rounded to it; others float32",
            "dtype float32, expected float16",
        ),
        (
            LenientClip(),
            "clip: NaN bounds and low > high raise ValueError",
            "clip(x, 2, 1): returned",
        ),
        (UnstablePartition(), "partition: buckets, offsets, stable permutation", "permutation"),
        (ListToNumpy(), "asarray: float32 by default, named dtypes", "to_numpy returned a list"),
        (TruncatingSum(), "row_sum: random arrays with NaN and infinities", "row_sum(random"),
    ],
    ids=lambda v: v.name if isinstance(v, NumpyBackend) else None,
)
def test_the_suite_catches_a_broken_backend(backend: Any, case: str, says: str) -> None:
    with pytest.raises(AssertionError) as caught:
        BY_NAME[case].run(backend)
    message = str(caught.value)
    assert message.startswith(f"backend {backend.name!r}, case {case!r}: ")
    assert says in message


def test_the_suite_runs_outside_pytest_and_reports_every_failure() -> None:
    failed = []
    for case in CASES:
        try:
            case.run(SampleStd())
        except AssertionError:
            failed.append(case.name)
    assert failed and all("std" in name for name in failed)


# -- the protocol check --------------------------------------------------------------------


class MissingMethods:
    name = "half-done"
    capabilities = BackendCapabilities()

    def asarray(self, data: Any, dtype: str | None = "float32") -> Any:
        return np.asarray(data, dtype=dtype)


def test_check_backend_names_the_backend_and_every_missing_method() -> None:
    with pytest.raises(BackendProtocolError) as caught:
        check_backend(MissingMethods(), "registered-name")
    message = str(caught.value)
    assert "backend 'registered-name'" in message
    assert "test_backend_conformance.MissingMethods" in message
    missing = [m for m in BACKEND_METHODS if m != "asarray"]
    assert all(f"method {m!r} is missing" in message for m in missing)
    assert "'asarray'" not in message
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, PluginError)


def test_check_backend_wants_a_name_and_declared_capabilities() -> None:
    class NoCapabilities(NumpyBackend):
        name = ""
        capabilities = ("device_rings",)  # type: ignore[assignment]

    with pytest.raises(BackendProtocolError) as caught:
        check_backend(NoCapabilities())
    message = str(caught.value)
    assert "'name' must be a non-empty str; got ''" in message
    assert "'capabilities' must be a pydotcompute.backend.BackendCapabilities; got tuple" in message


def test_device_rings_need_make_ring() -> None:
    class Promises(NumpyBackend):
        name = "promises"
        capabilities = BackendCapabilities(device_rings=True)

    with pytest.raises(BackendProtocolError, match="device_rings is True but there is no"):
        check_backend(Promises())

    class Keeps(Promises):
        def make_ring(self, capacity: int, like: Any, backpressure: Any) -> None:
            return None

    assert check_backend(Keeps()).capabilities.device_rings


def test_a_method_that_is_not_callable_is_named() -> None:
    class Shadowed(NumpyBackend):
        clip = 3  # type: ignore[assignment]

    with pytest.raises(BackendProtocolError, match="'clip' is not callable"):
        check_backend(Shadowed())


def test_the_plugin_manager_checks_a_backend_when_it_is_first_made() -> None:
    class Plugin:
        @hookimpl
        def pydotcompute_register_backends(self) -> Mapping[str, Any]:
            return {"half-done": MissingMethods, "fine": NumpyBackend}

    pm = create_plugin_manager(autoload=False)
    assert pm.register_plugin(Plugin(), distribution="half-done-dist", entry_point="plugin")
    with pytest.raises(BackendProtocolError, match=r"backend 'half-done' .*'clip' is missing"):
        pm.backend("half-done")
    assert isinstance(pm.backend("fine"), NumpyBackend)
