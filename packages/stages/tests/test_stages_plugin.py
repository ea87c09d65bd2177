"""The plugin module registers the four stages, each documented and parameter-checked."""

from __future__ import annotations

import importlib.metadata

import pydotcompute_stages
import pydotcompute_stages._plugin as stages_plugin
from pydotcompute.stage import StageDefinition


def test_the_hook_returns_the_four_stages() -> None:
    stages = stages_plugin.pydotcompute_register_stages()
    assert list(stages) == ["preprocess", "compute", "aggregator", "distributor"]
    for name, definition in stages.items():
        assert isinstance(definition, StageDefinition) and definition.name == name
        assert definition.summary and definition.accepts and definition.emits
        for param in definition.params.values():
            assert param.doc, f"{name}: every parameter is documented"


def test_the_entry_point_is_declared_in_the_installed_metadata() -> None:
    (ep,) = [
        ep
        for ep in importlib.metadata.entry_points(group="pydotcompute")
        if ep.dist is not None and ep.dist.name == "pydotcompute-stages"
    ]
    assert ep.value == "pydotcompute_stages._plugin"
    assert ep.load() is stages_plugin


def test_the_package_exports_its_stages_and_messages() -> None:
    assert set(pydotcompute_stages.__all__) == {
        "AGGREGATOR",
        "COMPUTE",
        "DISTRIBUTOR",
        "PREPROCESS",
        "STATISTICS",
        "Aggregator",
        "Compute",
        "ComputeResult",
        "Distributor",
        "Preprocess",
        "PreprocessedData",
    }
    for name in pydotcompute_stages.__all__:
        assert getattr(pydotcompute_stages, name) is not None
