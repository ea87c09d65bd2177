"""End-to-end records/s of the two-stage pipeline as pydotcompute runs it on the GPU.

``preprocess -> compute(stats=["mean"])`` as a :class:`pydotcompute.Pipeline`, fed
RecordBatches of 65,536 x 64 float32 that are already CUDA tensors. Between the stages
each batch stays on the device: with ``triton`` it goes through a DeviceRing (a push and
a pop launch); the sink hands each batch's means to the host as numpy, which is the
pipeline's only copy to the host. The same pipeline on the ``torch`` backend (eager ops;
rings too, as triton is installed) is the comparison. A round is one whole run, kernel
launch and wiring included.
"""

from __future__ import annotations

import asyncio
from typing import Any

import torch
from pydotcompute import Pipeline, RecordBatch
from pydotcompute.plugins import create_plugin_manager
from pydotcompute.stage import record_ids_for_rows

ROWS, WIDTH = 65_536, 64
BATCHES = 64  # 4,194,304 records a round


def feed(device: str, batches: int = BATCHES, rows: int = ROWS) -> list[RecordBatch]:
    """``batches`` RecordBatches of one random ``(rows, WIDTH)`` tensor on ``device``."""
    x = torch.randn((rows, WIDTH), device=device)
    return [
        RecordBatch(values=x, record_ids=record_ids_for_rows(i * rows, rows, 1))
        for i in range(batches)
    ]


async def run_pipeline(
    backend: str, batches: list[RecordBatch], fuse: bool = False
) -> tuple[int, int]:
    """Run the pipeline over ``batches``: ``(records out, rows that went through rings)``.
    ``fuse``: the two stages in one worker (no ring), else apart with a ring between."""
    pipeline = (
        Pipeline(f"two-stage-{backend}", defaults={"fuse": fuse})
        .add_stage("preprocess", backend=backend)
        .add_stage("compute", backend=backend, params={"stats": ["mean"]})
    )
    records = 0
    async with pipeline.open(plugins=create_plugin_manager()) as run:
        async for result in run.process(batches):
            records += len(result)
        ringed = sum(
            link.ring.statistics().pushed
            for links in run.ring_links().values()
            for link in links.values()
            if link.ring is not None
        )
    return records, ringed


def _bench(benchmark: Any, backend: str, label: str, fuse: bool = False) -> None:
    batches = feed("cuda")
    asyncio.run(run_pipeline(backend, batches[:2], fuse))  # compile, warm the allocator
    outcome: list[tuple[int, int]] = []

    def one_round() -> None:
        outcome.append(asyncio.run(run_pipeline(backend, batches, fuse)))
        torch.cuda.synchronize()

    benchmark.pedantic(one_round, rounds=5, warmup_rounds=0)
    records, ringed = outcome[-1]
    assert records == ROWS * BATCHES, f"{records} records came out of {ROWS * BATCHES}"
    seconds = benchmark.stats.stats.median
    benchmark.extra_info.update(
        pipeline=label,
        records_per_batch=ROWS,
        width=WIDTH,
        batches=BATCHES,
        seconds_per_batch=seconds / BATCHES,
        records_per_s=ROWS * BATCHES / seconds,
        rows_through_rings=ringed,
        device=torch.cuda.get_device_name(),
    )


def test_pipeline_run_triton(benchmark: Any) -> None:
    _bench(benchmark, "triton", "Pipeline, triton backend, DeviceRing between stages")


def test_pipeline_run_triton_fused(benchmark: Any) -> None:
    _bench(benchmark, "triton", "Pipeline, triton backend, stages fused (no ring)", fuse=True)


def test_pipeline_run_torch(benchmark: Any) -> None:
    _bench(benchmark, "torch", "Pipeline, torch backend (eager ops)")
