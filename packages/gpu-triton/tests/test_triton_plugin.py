"""The pydotcompute plugin: the hook, its factories, and entry-point discovery."""

from __future__ import annotations

import importlib.metadata
import os

import pytest
from pydotcompute.plugins import create_plugin_manager
from pydotcompute.stage import ComputeBackend
from pydotcompute_triton import TorchBackend, TritonUnavailableError, _plugin
from pydotcompute_triton._availability import triton_unavailable_reason


def test_entry_point_is_declared() -> None:
    eps = importlib.metadata.entry_points(group="pydotcompute")
    ours = [ep for ep in eps if ep.name == "triton"]
    assert len(ours) == 1 and ours[0].value == "pydotcompute_triton._plugin"
    assert ours[0].dist is not None and ours[0].dist.name == "pydotcompute-triton"
    assert ours[0].load() is _plugin


def test_hook_offers_lazy_torch_and_triton_factories() -> None:
    factories = _plugin.pydotcompute_register_backends()
    assert sorted(factories) == ["torch", "triton"]
    backend = factories["torch"]()
    assert isinstance(backend, TorchBackend) and isinstance(backend, ComputeBackend)


def test_core_discovers_both_backends_from_the_installed_distribution() -> None:
    pm = create_plugin_manager(autoload=True)
    backends = pm.backends()
    assert backends["torch"].distribution == "pydotcompute-triton"
    assert backends["triton"].distribution == "pydotcompute-triton"
    assert isinstance(pm.backend("torch"), TorchBackend)
    assert not [e for e in pm.load_errors if "pydotcompute-triton" in str(e)]


def test_triton_factory_fails_clearly_where_triton_cannot_run() -> None:
    reason = triton_unavailable_reason()
    if reason is None:
        pytest.skip(
            "triton can run here" + (" (interpreter)" if os.environ.get("TRITON_INTERPRET") else "")
        )
    with pytest.raises(TritonUnavailableError) as info:
        _plugin.triton_backend()
    assert reason in str(info.value)
