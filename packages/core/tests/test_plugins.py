"""The plugin manager: specs, built-ins, isolation of broken plugins, registries.

Every test builds a fresh manager with autoload off and registers plugin objects
itself; discovery through real installed distributions is tested in the top-level
``tests/test_plugins_*.py``.
"""

from __future__ import annotations

import importlib.metadata
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from pydotcompute.backend import NumpyBackend
from pydotcompute.errors import (
    BackendUnavailableError,
    PluginConflictError,
    PluginLoadError,
    UnknownBackendError,
    UnknownStageError,
)
from pydotcompute.plugins import (
    DISABLE_AUTOLOAD_ENV,
    PluginManager,
    available_backends,
    available_stages,
    create_plugin_manager,
    get_backend,
    get_plugin_manager,
    get_stage,
)
from pydotcompute.stage import StageDefinition, StageSetup, hookimpl


def _factory(setup: StageSetup) -> Any:
    async def kernel(ctx: Any) -> None:
        return None

    return kernel


def stage_def(name: str) -> StageDefinition:
    return StageDefinition(name=name, factory=_factory, summary=f"the {name} stage")


class StagesPlugin:
    def __init__(self, *names: str) -> None:
        self.names = names

    @hookimpl
    def pydotcompute_register_stages(self) -> dict[str, StageDefinition]:
        return {n: stage_def(n) for n in self.names}


class BackendsPlugin:
    def __init__(self, **factories: Any) -> None:
        self.factories = factories

    @hookimpl
    def pydotcompute_register_backends(self) -> dict[str, Any]:
        return dict(self.factories)


@pytest.fixture
def pm() -> PluginManager:
    return create_plugin_manager(autoload=False)


# -- built-ins and specs ------------------------------------------------------------------


def test_core_registers_the_numpy_backend_as_a_builtin(pm: PluginManager) -> None:
    backends = pm.backends()
    assert list(backends) == ["numpy"]
    assert backends["numpy"].distribution == "pydotcompute"
    definition, distribution = backends["numpy"]  # unpacks as (definition, distribution)
    assert definition is NumpyBackend and distribution == "pydotcompute"
    assert isinstance(pm.backend("numpy"), NumpyBackend)
    assert pm.backend("numpy") is pm.backend("numpy")  # created once, shared
    assert pm.stages() == {}
    assert pm.load_errors == []


def test_hook_specs_are_added(pm: PluginManager) -> None:
    assert pm.hook.pydotcompute_register_stages.has_spec()
    assert pm.hook.pydotcompute_register_backends.has_spec()


def test_registries_name_the_providing_distribution(pm: PluginManager) -> None:
    assert pm.register_plugin(StagesPlugin("a", "b"), distribution="dist-ab", entry_point="ab")
    assert pm.register_plugin(
        BackendsPlugin(fast=NumpyBackend), distribution="dist-fast", entry_point="f"
    )
    assert {n: p.distribution for n, p in available_stages(pm).items()} == {
        "a": "dist-ab",
        "b": "dist-ab",
    }
    assert available_backends(pm)["fast"].distribution == "dist-fast"
    assert get_stage("a", pm).summary == "the a stage"
    assert isinstance(get_backend("fast", pm), NumpyBackend)


# -- unknown names ------------------------------------------------------------------------


def test_unknown_stage_lists_what_is_installed(pm: PluginManager) -> None:
    pm.register_plugin(
        StagesPlugin("preprocess", "compute"), distribution="my-stages", entry_point="s"
    )
    with pytest.raises(UnknownStageError) as info:
        pm.stage("preprocss")
    message = str(info.value)
    assert "'preprocss'" in message
    assert "preprocess (from my-stages)" in message and "compute (from my-stages)" in message
    assert isinstance(info.value, LookupError) and isinstance(info.value, ValueError)


def test_unknown_stage_with_nothing_installed_says_none(pm: PluginManager) -> None:
    with pytest.raises(UnknownStageError, match="installed stages: none"):
        pm.stage("compute")


def test_unknown_backend_lists_what_is_installed(pm: PluginManager) -> None:
    with pytest.raises(UnknownBackendError, match=r"'cuda'.*numpy \(from pydotcompute\)"):
        pm.backend("cuda")


def test_unknown_name_mentions_skipped_broken_plugins(pm: PluginManager) -> None:
    class Raising:
        @hookimpl
        def pydotcompute_register_stages(self) -> Any:
            raise ImportError("no module named 'cupy'")

    pm.register_plugin(Raising(), distribution="gpu-stages", entry_point="gpu")
    with pytest.raises(UnknownStageError, match="broken plugins were skipped, from: gpu-stages"):
        pm.stage("gpu_normalize")


# -- broken plugins -----------------------------------------------------------------------


def test_a_hook_with_no_spec_is_reported_and_the_plugin_left_out(pm: PluginManager) -> None:
    class Typo:
        @hookimpl
        def pydotcompute_register_stage(self) -> Any:  # missing "s"
            return {"x": stage_def("x")}

    assert not pm.register_plugin(Typo(), distribution="typo-dist", entry_point="typo")
    pm.register_plugin(StagesPlugin("good"), distribution="good-dist", entry_point="good")
    (error,) = pm.load_errors
    assert error.distribution == "typo-dist" and error.entry_point == "typo"
    assert "hook implementation(s) pydotcompute_register_stage match no hook specification" in str(
        error
    )
    assert "known hooks: pydotcompute_register_backends, pydotcompute_register_stages" in str(error)
    assert list(pm.stages()) == ["good"]
    pm.check_pending()  # nothing unverified was left registered


def test_a_hook_with_a_bad_signature_is_reported(pm: PluginManager) -> None:
    class BadArgs:
        @hookimpl
        def pydotcompute_register_stages(self, config: Any) -> Any:
            return {}

    assert not pm.register_plugin(BadArgs(), distribution="bad-args", entry_point="b")
    (error,) = pm.load_errors
    assert error.distribution == "bad-args" and "cannot register it" in error.reason
    assert "config" in error.reason
    assert pm.get_plugin("bad-args:b") is None
    assert pm.stages() == {}


def test_a_raising_hook_does_not_take_the_others_down(pm: PluginManager) -> None:
    class Raising:
        @hookimpl
        def pydotcompute_register_stages(self) -> Any:
            raise RuntimeError("boom")

    pm.register_plugin(StagesPlugin("before"), distribution="d1", entry_point="e1")
    pm.register_plugin(Raising(), distribution="broken-dist", entry_point="broken")
    pm.register_plugin(StagesPlugin("after"), distribution="d2", entry_point="e2")
    assert list(pm.stages()) == ["before", "after"]
    (error,) = pm.load_errors
    assert isinstance(error, PluginLoadError)
    assert (error.distribution, error.entry_point) == ("broken-dist", "broken")
    assert "RuntimeError('boom')" in str(error)
    assert "broken-dist" in str(error)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (["not", "a", "mapping"], "must return a mapping"),
        ({"x": "not a definition"}, "expected a pydotcompute.StageDefinition"),
        ({"x": stage_def("y")}, "registered as 'x' but its definition is named 'y'"),
        ({"": stage_def("x")}, "non-empty string"),
    ],
)
def test_nonsense_from_a_stage_hook_is_reported(
    pm: PluginManager, answer: Any, problem: str
) -> None:
    class Nonsense:
        @hookimpl
        def pydotcompute_register_stages(self) -> Any:
            return answer

    pm.register_plugin(Nonsense(), distribution="odd", entry_point="odd")
    pm.register_plugin(StagesPlugin("fine"), distribution="ok", entry_point="ok")
    assert list(pm.stages()) == ["fine"]
    (error,) = pm.load_errors
    assert problem in error.reason and error.distribution == "odd"


def test_a_backend_that_is_not_a_factory_is_reported(pm: PluginManager) -> None:
    pm.register_plugin(BackendsPlugin(weird=42), distribution="odd", entry_point="odd")
    assert list(pm.backends()) == ["numpy"]
    assert "expected a factory" in pm.load_errors[0].reason


def test_a_backend_whose_factory_fails_is_unavailable_with_its_cause(pm: PluginManager) -> None:
    def no_gpu() -> Any:
        raise RuntimeError("CUDA is not available")

    pm.register_plugin(BackendsPlugin(gpu=no_gpu), distribution="gpu-dist", entry_point="g")
    assert "gpu" in pm.backends()  # listed: it is installed
    with pytest.raises(BackendUnavailableError, match="'gpu' from 'gpu-dist'") as info:
        pm.backend("gpu")
    assert isinstance(info.value.__cause__, RuntimeError)


def test_load_errors_are_not_repeated_when_registries_are_rebuilt(pm: PluginManager) -> None:
    class Raising:
        @hookimpl
        def pydotcompute_register_stages(self) -> Any:
            raise RuntimeError("boom")

    pm.register_plugin(Raising(), distribution="broken", entry_point="b")
    pm.stages()
    pm.register_plugin(StagesPlugin("x"), distribution="ok", entry_point="ok")  # rebuilds
    pm.stages()
    assert len(pm.load_errors) == 1


# -- duplicate names ----------------------------------------------------------------------


def test_a_stage_name_registered_twice_is_a_conflict_naming_both(pm: PluginManager) -> None:
    pm.register_plugin(StagesPlugin("normalize", "a"), distribution="first-dist", entry_point="one")
    pm.register_plugin(
        StagesPlugin("normalize", "b"), distribution="second-dist", entry_point="two"
    )
    assert list(pm.stages()) == ["a", "b"]  # the rest of both plugins still works
    with pytest.raises(PluginConflictError) as info:
        pm.stage("normalize")
    message = str(info.value)
    assert "'first-dist'" in message and "'second-dist'" in message
    assert info.value.kind == "stage" and info.value.name == "normalize"
    assert ("stage", "normalize") in pm.conflicts


def test_a_backend_shadowing_numpy_is_a_conflict(pm: PluginManager) -> None:
    pm.register_plugin(BackendsPlugin(numpy=NumpyBackend), distribution="shadow", entry_point="s")
    with pytest.raises(
        PluginConflictError, match=r"'shadow'.*'pydotcompute'|'pydotcompute'.*'shadow'"
    ):
        pm.backend("numpy")


# -- entry points (faked, one at a time) --------------------------------------------------


class _FakeDist:
    def __init__(self, name: str) -> None:
        self.name = name


class _FakeEntryPoint:
    def __init__(self, name: str, value: str, dist: str, load: Any) -> None:
        self.name = name
        self.value = value
        self.dist = _FakeDist(dist)
        self._load = load

    def load(self) -> Any:
        return self._load()


def _raise_import_error() -> Any:
    raise ImportError("No module named 'missing_dependency'")


@pytest.fixture
def fake_entry_points(monkeypatch: pytest.MonkeyPatch) -> list[_FakeEntryPoint]:
    points: list[_FakeEntryPoint] = []

    def entry_points(group: str) -> list[_FakeEntryPoint]:
        assert group == "pydotcompute"
        return points

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return points


def test_entry_points_load_one_by_one_and_an_import_error_is_isolated(
    fake_entry_points: list[_FakeEntryPoint],
) -> None:
    good = types.SimpleNamespace(plugin=StagesPlugin("ok_stage"))
    fake_entry_points += [
        _FakeEntryPoint("broken", "broken_pkg.plugin", "broken-dist", _raise_import_error),
        _FakeEntryPoint("good", "good_pkg.plugin", "good-dist", lambda: good.plugin),
    ]
    pm = create_plugin_manager(autoload=True)
    assert pm.stages()["ok_stage"].distribution == "good-dist"
    (error,) = pm.load_errors
    assert (error.distribution, error.entry_point) == ("broken-dist", "broken")
    assert "importing 'broken_pkg.plugin' failed" in error.reason
    assert "missing_dependency" in error.reason


def test_the_same_entry_point_seen_twice_is_loaded_once(
    fake_entry_points: list[_FakeEntryPoint],
) -> None:
    plugin = StagesPlugin("only")
    fake_entry_points += [
        _FakeEntryPoint("p", "pkg.plugin", "dist", lambda: plugin),
        _FakeEntryPoint("p", "pkg.plugin", "dist", lambda: plugin),
    ]
    pm = create_plugin_manager(autoload=True)
    assert list(pm.stages()) == ["only"] and pm.load_errors == []


def test_the_environment_variable_turns_autoload_off(
    fake_entry_points: list[_FakeEntryPoint], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_entry_points.append(_FakeEntryPoint("p", "pkg.plugin", "dist", lambda: StagesPlugin("x")))
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    assert create_plugin_manager().stages() == {}
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "0")
    assert list(create_plugin_manager().stages()) == ["x"]
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV)
    assert list(create_plugin_manager().stages()) == ["x"]


def test_a_plugin_module_is_a_valid_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "module_plugin_for_test.py"
    module.write_text(
        "from pydotcompute.backend import hookimpl\n"
        "from pydotcompute.backend import NumpyBackend\n"
        "@hookimpl\n"
        "def pydotcompute_register_backends():\n"
        "    return {'numpy2': NumpyBackend}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import module_plugin_for_test

    pm = create_plugin_manager(autoload=False)
    assert pm.register_plugin(module_plugin_for_test, distribution="mod-dist", entry_point="m")
    assert pm.backends()["numpy2"].distribution == "mod-dist"
    sys.modules.pop("module_plugin_for_test", None)


def test_get_plugin_manager_is_one_shared_manager() -> None:
    assert get_plugin_manager() is get_plugin_manager()
    assert "numpy" in available_backends()
