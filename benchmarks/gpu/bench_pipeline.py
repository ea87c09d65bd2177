"""The guide's two-stage pipeline end to end on the device, at widths 64 and 1,024.

``preprocess -> compute(stats=["mean"])`` on the triton backend, run as pydotcompute runs
it: fused (the default: one worker, one kernel a batch), apart with batches passed by
reference (the pipeline without rings), and apart through device rings; with input
already on the device and with input from host memory (numpy batches, copied by the
pipeline). Baselines on the same batches in the same run: a plain loop of torch eager
ops and of ``torch.compile`` of them. Figures: steady-state records/s (from a round of
many batches less a round of one, so start-up is reported apart), ratios to the
baselines, and for host input the fraction of measured host-to-device bandwidth.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest
from gpu_harness import WIDTHS, Mode, guide_compiled, guide_eager, synchronize
from pydotcompute import Pipeline, PipelineRun, RecordBatch
from pydotcompute.plugins import create_plugin_manager
from pydotcompute.stage import record_ids_for_rows

WAYS = {
    "fused": {},
    "apart_by_reference": {"fuse": False},
    "apart_device_rings": {"fuse": False, "ring_rows": "two_batches"},
}


def batches(mode: Mode, width: int, on_device: bool) -> list[RecordBatch]:
    """``mode.batches`` batches cycling through distinct inputs past the L2 cache."""
    from gpu_harness import Rotation

    rotation = Rotation(mode, (mode.rows, width))
    inputs: list[Any] = rotation.inputs if on_device else [t.cpu().numpy() for t in rotation.inputs]
    out = []
    for i in range(mode.batches):
        values = inputs[i % len(inputs)]
        out.append(
            RecordBatch(values=values, record_ids=record_ids_for_rows(i * mode.rows, mode.rows, 1))
        )
    return out


def plan(mode: Mode, way: str) -> Any:
    settings = dict(WAYS[way])
    if settings.get("ring_rows") == "two_batches":
        settings["ring_rows"] = 2 * mode.rows
    pipeline = (
        Pipeline(f"guide-{way}", defaults={"max_batch_rows": mode.rows})
        .add_stage("preprocess", backend="triton", **settings)
        .add_stage("compute", backend="triton", params={"stats": ["mean"]}, **settings)
    )
    return pipeline.validate(create_plugin_manager())


async def one_run(the_plan: Any, feed: list[RecordBatch]) -> int:
    records = 0
    async with PipelineRun(the_plan) as run:
        async for result in run.process(feed):
            records += len(result)
    return records


def timed_run(mode: Mode, the_plan: Any, feed: list[RecordBatch]) -> float:
    synchronize(mode.device)
    start = time.perf_counter()
    records = asyncio.run(one_run(the_plan, feed))
    synchronize(mode.device)
    assert records == mode.rows * len(feed), f"{records} records out of {mode.rows * len(feed)}"
    return time.perf_counter() - start


def steady(mode: Mode, run_batches: Any) -> dict[str, float]:
    """Steady-state seconds a batch and start-up seconds, from rounds of all the batches
    and of one (medians over the mode's rounds)."""
    run_batches(1)  # compile and warm everything outside the timing
    whole = float(np.median([run_batches(mode.batches) for _ in range(mode.rounds)]))
    single = float(np.median([run_batches(1) for _ in range(mode.rounds)]))
    # Noise can make one batch look as slow as all of them (tiny interpreted rounds):
    # then the plain average, start-up included, is the honest figure.
    per_batch = (whole - single) / (mode.batches - 1) if whole > single else whole / mode.batches
    return {"seconds_per_batch": per_batch, "startup_s": max(single - per_batch, 0.0)}


def baseline(mode: Mode, feed: list[RecordBatch], fn: Any) -> dict[str, float]:
    def loop(n: int) -> float:
        synchronize(mode.device)
        start = time.perf_counter()
        for b in feed[:n]:
            fn(b.values).cpu()  # the results reach the host, as the pipeline's do
        synchronize(mode.device)
        return time.perf_counter() - start

    return steady(mode, loop)


@pytest.mark.parametrize("width", WIDTHS)
def test_guide_pipeline_end_to_end(
    benchmark: Any, mode: Mode, references: dict[str, Any], width: int
) -> None:
    on_device = batches(mode, width, on_device=True)
    from_host = batches(mode, width, on_device=False)

    figures: dict[str, dict[str, float]] = {}
    for way in WAYS:
        the_plan = plan(mode, way)
        figures[way] = steady(mode, lambda n, p=the_plan: timed_run(mode, p, on_device[:n]))
    fused_plan = plan(mode, "fused")
    figures["fused_input_from_host"] = steady(
        mode, lambda n: timed_run(mode, fused_plan, from_host[:n])
    )
    figures["torch_eager_loop"] = baseline(mode, on_device, guide_eager(mode))
    errors: dict[str, str] = {}
    try:
        figures["torch_compile_loop"] = baseline(mode, on_device, guide_compiled(mode))
    except Exception as exc:  # reported, not fatal: the other figures still count
        errors["torch_compile_loop"] = f"{type(exc).__name__}: {exc}"[:500]
    records_per_s = {name: mode.rows / f["seconds_per_batch"] for name, f in figures.items()}
    compile_rate = records_per_s.get("torch_compile_loop")
    batch_bytes = mode.rows * width * 4
    host_bytes_per_s = batch_bytes / figures["fused_input_from_host"]["seconds_per_batch"]
    benchmark.pedantic(lambda: timed_run(mode, fused_plan, on_device), rounds=1, warmup_rounds=0)
    benchmark.extra_info.update(
        op="guide pipeline: preprocess -> compute(mean), triton",
        width=width,
        rows=mode.rows,
        batches=mode.batches,
        records_per_s=records_per_s,
        startup_s={name: f["startup_s"] for name, f in figures.items()},
        # > 1: the pipeline (fused, input on the device) is that many times faster.
        speedup_over_torch_eager=records_per_s["fused"] / records_per_s["torch_eager_loop"],
        speedup_over_torch_compile=records_per_s["fused"] / compile_rate if compile_rate else None,
        speedup_over_no_rings=records_per_s["fused"] / records_per_s["apart_by_reference"],
        speedup_over_device_rings=records_per_s["fused"] / records_per_s["apart_device_rings"],
        host_input_bytes_per_s=host_bytes_per_s,
        host_input_fraction_of_h2d=host_bytes_per_s / references["h2d_bytes_per_s"],
        h2d_bytes_per_s=references["h2d_bytes_per_s"],
        device=references["device"],
        interpreted=references["interpreted"],
        errors=errors,
    )
