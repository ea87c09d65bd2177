"""Plugin discovery from installed distributions: the real pydotcompute-stages, throwaway
distributions put on the path for one test, broken ones, and the example plugin package
built and installed with pip."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydotcompute import Pipeline, records_from_array
from pydotcompute.plugins import PluginManager, create_plugin_manager

ROOT = Path(__file__).resolve().parents[1]


def make_distribution(
    site: Path, dist: str, module: str, source: str, entry_point: str = "plugin"
) -> None:
    """A minimal installed distribution: a module plus its .dist-info with an entry point."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[pydotcompute]\n{entry_point} = {module}\n")
    (info / "RECORD").write_text("")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    before = set(sys.modules)
    importlib.invalidate_caches()
    yield path
    for name in set(sys.modules) - before:
        if name.startswith("throwaway_") or name.startswith("broken_"):
            del sys.modules[name]


GOOD_PLUGIN = """
    from pydotcompute.stage import BatchStage, Param, RecordBatch, StageDefinition, hookimpl, root_id

    class Negate(BatchStage):
        async def process(self, batch, out):
            for msg in batch:
                await out.send(RecordBatch(values=-msg.values * self.params["scale"],
                                           record_ids=msg.record_ids, correlation_id=root_id(msg)))

    @hookimpl
    def pydotcompute_register_stages():
        return {"negate": StageDefinition(name="negate", factory=Negate.factory, reads_rings=True,
                                          summary="negate", params={"scale": Param(float, default=1.0)})}
"""


def test_the_installed_pydotcompute_stages_is_discovered() -> None:
    pm = create_plugin_manager(autoload=True)
    stages = pm.stages()
    for name in ("preprocess", "compute", "aggregator", "distributor"):
        assert stages[name].distribution == "pydotcompute-stages"
    assert pm.backends()["numpy"].distribution == "pydotcompute"
    assert not [e for e in pm.load_errors if e.distribution == "pydotcompute-stages"]


async def test_a_throwaway_distribution_is_discovered_and_runs(site: Path) -> None:
    make_distribution(site, "throwaway-negate", "throwaway_negate", GOOD_PLUGIN, "negate")
    pm = create_plugin_manager(autoload=True)
    assert pm.stages()["negate"].distribution == "throwaway-negate"
    assert "preprocess" in pm.stages()  # the installed ones are still there
    pipeline = Pipeline().add_stage("negate", params={"scale": 2.0})
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    results = [r async for r in pipeline.run(records_from_array(x), plugins=pm)]
    np.testing.assert_array_equal(np.concatenate([r.values for r in results]), -2.0 * x)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("import a_module_that_is_not_installed\n", "importing 'broken_plugin_mod' failed"),
        (
            "from pydotcompute.stage import hookimpl\n"
            "@hookimpl\n"
            "def pydotcompute_register_stagez():\n"
            "    return {}\n",
            "pydotcompute_register_stagez match no hook specification",
        ),
        (
            "from pydotcompute.stage import hookimpl\n"
            "@hookimpl\n"
            "def pydotcompute_register_stages():\n"
            "    raise RuntimeError('cannot start')\n",
            "pydotcompute_register_stages() raised RuntimeError('cannot start')",
        ),
        ("raise SystemError('broken at import')\n", "broken at import"),
    ],
)
def test_a_broken_distribution_is_reported_and_the_rest_still_works(
    site: Path, source: str, reason: str
) -> None:
    make_distribution(site, "broken-dist", "broken_plugin_mod", source, "broken")
    make_distribution(site, "throwaway-negate", "throwaway_negate", GOOD_PLUGIN, "negate")
    pm = create_plugin_manager(autoload=True)
    stages = pm.stages()
    assert stages["negate"].distribution == "throwaway-negate"
    assert stages["compute"].distribution == "pydotcompute-stages"
    (error,) = [e for e in pm.load_errors if e.distribution == "broken-dist"]
    assert error.entry_point == "broken" and reason in error.reason
    assert "'broken-dist'" in str(error)


def test_two_distributions_claiming_one_stage_name(site: Path) -> None:
    make_distribution(site, "throwaway-one", "throwaway_one", GOOD_PLUGIN, "one")
    make_distribution(site, "throwaway-two", "throwaway_two", GOOD_PLUGIN, "two")
    pm = create_plugin_manager(autoload=True)
    with pytest.raises(
        Exception, match=r"'throwaway-one'.*'throwaway-two'|'throwaway-two'.*'throwaway-one'"
    ):
        pm.stage("negate")
    assert "compute" in pm.stages()


def test_the_cli_lists_a_broken_plugin_with_its_distribution(site: Path) -> None:
    make_distribution(
        site, "broken-dist", "broken_plugin_mod", "import not_installed_anywhere\n", "broken"
    )
    env_path = f"{site}:{':'.join(p for p in sys.path if p)}"
    done = subprocess.run(
        [sys.executable, "-m", "pydotcompute.cli", "stages", "--json"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path, "PATH": ""},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    import json

    listing = json.loads(done.stdout)
    assert {"distribution": "broken-dist", "entry_point": "broken"}.items() <= listing[
        "broken_plugins"
    ][0].items()
    assert "not_installed_anywhere" in listing["broken_plugins"][0]["problem"]
    assert {s["name"] for s in listing["stages"]} >= {
        "preprocess",
        "compute",
        "aggregator",
        "distributor",
    }


@pytest.fixture(scope="module")
def example_plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/plugin built into a wheel and installed with pip into a throwaway target."""
    target = tmp_path_factory.mktemp("example-plugin")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(ROOT / "examples" / "plugin"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return target


async def test_the_example_plugin_package_installs_and_is_discovered(
    example_plugin_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(example_plugin_site))
    importlib.invalidate_caches()
    try:
        pm: PluginManager = create_plugin_manager(autoload=True)
        provided = pm.stages()["clip"]
        assert provided.distribution == "pydotcompute-example-clip"
        pipeline = Pipeline.from_toml(ROOT / "examples" / "clip.toml")
        x = np.linspace(-1, 2, 40, dtype=np.float32).reshape(10, 4)
        results = [r async for r in pipeline.run(records_from_array(x), plugins=pm)]
        stats = np.concatenate([r.values for r in results])
        assert results[0].columns == ("min", "max", "mean")
        assert stats[:, 0].min() >= 0.25 and stats[:, 1].max() <= 0.75
        np.testing.assert_allclose(
            np.sort(stats[:, 2]), np.sort(np.clip(x, 0.25, 0.75).mean(axis=1)), rtol=1e-6
        )
    finally:
        sys.modules.pop("pydotcompute_example_clip", None)
