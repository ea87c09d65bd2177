"""`pydotcompute run --engine ray [--address ...]` as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from cli_helpers import GUIDE, one_error_line, pydotcompute


def hide_ray(tmp_path: Path) -> dict[str, str]:
    """An environment in which ``import ray`` fails, as where the extra is not installed."""
    fake = tmp_path / "hidden" / "ray"
    fake.mkdir(parents=True, exist_ok=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    return {"PYTHONPATH": str(fake.parent)}


def test_without_ray_engine_ray_is_a_usage_error_naming_the_extra(tmp_path: Path) -> None:
    done = pydotcompute(
        "run", GUIDE, "--synthetic", "10", "--engine", "ray", env=hide_ray(tmp_path)
    )
    line = one_error_line(done)
    assert "engine 'ray' needs Ray" in line
    assert "pip install 'pydotcompute[ray]'" in line
    # The local engine does not need it.
    local = pydotcompute("run", GUIDE, "--synthetic", "10", "--json", env=hide_ray(tmp_path))
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout)["engine"] == "local"


def test_an_address_needs_engine_ray() -> None:
    done = pydotcompute("run", GUIDE, "--synthetic", "10", "--address", "auto")
    assert one_error_line(done) == "error: --address is for engine ray (--engine ray)"


def test_an_address_where_nothing_answers_fails_at_once_naming_it() -> None:
    done = pydotcompute(
        "run", GUIDE, "--synthetic", "10", "--engine", "ray", "--address", "127.0.0.1:1"
    )
    assert "cannot join Ray at '127.0.0.1:1': nothing answers there" in one_error_line(done)


def test_metrics_are_the_local_engines() -> None:
    done = pydotcompute("run", GUIDE, "--synthetic", "10", "--engine", "ray", "--metrics-port", "0")
    assert one_error_line(done) == "error: --metrics-port serves the local engine's runs only"


def test_engine_ray_starts_a_local_ray_for_the_run_and_reports_as_locally(
    tmp_path: Path,
) -> None:
    out = tmp_path / "means.npy"
    done = pydotcompute(
        "run", GUIDE, "--synthetic", "20000", "--engine", "ray", "--json", "-o", str(out)
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["engine"], report["records_fed"], report["results"]) == ("ray", 20000, 20000)
    assert report["messages_left_behind"] == 0
    stages = report["stages"]
    assert list(stages) == ["preprocess", "compute"]
    assert stages["compute"]["records_out"] == 20000
    assert stages["preprocess"]["fused_with"] == ["preprocess", "compute"]
    local = tmp_path / "local.npy"
    done = pydotcompute("run", GUIDE, "--synthetic", "20000", "-o", str(local))
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.load(out), np.load(local))
