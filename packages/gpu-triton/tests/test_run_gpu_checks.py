"""benchmarks/gpu/run_gpu_checks.sh end to end in its --interpret mode (issue 11, item 7):
wheels built from this checkout, installed, the machine checked, the GPU path's tests and
the GPU benchmarks run on the CPU at small sizes, every figure in one JSON. What a GPU
machine will run, minus the device, so the script's plumbing is proven before one is
lent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")
pytest.importorskip("pytest_benchmark")

pytestmark = pytest.mark.interpreter

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = ROOT / "benchmarks" / "gpu"


@pytest.mark.timeout(900)
def test_the_gpu_script_runs_end_to_end_on_the_cpu(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    wheels = tmp_path / "wheels"
    subprocess.run(
        ["bash", str(SCRIPTS / "build_wheels.sh"), str(wheels), "--packages-only"],
        env=env,
        check=True,
        capture_output=True,
    )
    out = tmp_path / "out"
    done = subprocess.run(
        ["bash", str(SCRIPTS / "run_gpu_checks.sh"), str(wheels), "--interpret", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "target n/a" in done.stdout and "every figure:" in done.stdout
    report = json.loads((out / "gpu-figures.json").read_text())
    environment = report["environment"]
    assert environment["problems"] == [] and environment["interpreted"] is True
    assert {"preprocess", "compute"} <= set(environment["stages"])
    assert {"torch", "triton"} <= set(environment["backends"])
    assert report["tests"]["passed"] > 0 and report["tests"]["failures"] == 0
    names = {(f["benchmark"], f["name"]) for f in report["figures"]}
    for width in (64, 1024):
        for op in ("minmax_normalize", "normalize_stats", "ring_push_pop"):
            assert (f"test_kernel_bandwidth[{op}-{width}]", "fraction_of_copy") in names
        pipeline = f"test_guide_pipeline_end_to_end[{width}]"
        for figure in (
            "records_per_s.fused",
            "records_per_s.apart_by_reference",
            "records_per_s.apart_device_rings",
            "records_per_s.fused_input_from_host",
            "speedup_over_torch_eager",
            "speedup_over_torch_compile",
            "host_input_fraction_of_h2d",
            "startup_s.fused",
        ):
            assert (pipeline, figure) in names, figure
        assert (
            f"test_two_steps_fused_against_torch[{width}]",
            "ratio_to_fused.torch_compile",
        ) in names
        assert (f"test_tile_sweep[{width}]", "table_over_best") in names
    assert all(t["met"] is None for t in report["targets"])  # no verdicts from the interpreter


def test_the_gpu_script_refuses_a_missing_wheel_folder(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(SCRIPTS / "run_gpu_checks.sh"), str(tmp_path / "nowhere"), "--interpret"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "folder of wheels" in done.stderr
