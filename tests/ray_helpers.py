"""Stages and a Ray start-up for the Ray engine's tests.

The actors import this module by name, so a test's Ray gets this folder on its workers'
``PYTHONPATH`` (:func:`worker_env`)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
from pydotcompute import KernelContext, Record, RecordBatch
from pydotcompute.plugins import PluginManager, create_plugin_manager
from pydotcompute.stage import (
    BatchStage,
    Emitter,
    Param,
    StageDefinition,
    StageSetup,
    hookimpl,
    root_id,
    run_stage,
    sort_batch,
)

HERE = Path(__file__).resolve().parent
EXAMPLE_PLUGIN = HERE.parent / "examples" / "plugin" / "src"


def worker_env() -> dict[str, Any]:
    """``ray.init`` keyword arguments: actors find this folder and the example plugin."""
    paths = [str(HERE), str(EXAMPLE_PLUGIN), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {
        "include_dashboard": False,
        "log_to_driver": False,
        "runtime_env": {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}},
    }


class Scale(BatchStage):
    """Multiplies every value by ``factor``, after ``delay`` seconds per batch taken."""

    async def process(self, batch: list[Any], out: Emitter) -> None:
        if self.params["delay"]:
            await asyncio.sleep(self.params["delay"])
        factor = self.params["factor"]
        parts = sort_batch(batch)
        for record in parts.records:
            await out.send(
                Record(
                    values=record.values * factor,
                    key=record.key,
                    correlation_id=root_id(record),
                )
            )
        for columnar in parts.batches:
            await out.send(
                RecordBatch(
                    values=columnar.values * factor,
                    record_ids=columnar.record_ids,
                    keys=columnar.keys,
                    correlation_id=root_id(columnar),
                )
            )


def flaky_factory(setup: StageSetup) -> Any:
    """A scale stage whose kernel crashes ``crashes`` times, holding one message each
    time, before it runs normally (the count lasts across the kernel's restarts)."""
    stage = Scale(setup)
    left = [int(setup.params["crashes"])]

    async def kernel(ctx: KernelContext) -> None:
        if left[0] > 0:
            left[0] -= 1
            await ctx.receive()
            raise RuntimeError("the flaky stage crashed")
        await run_stage(ctx, setup, stage)

    return kernel


_SCALE_PARAMS = {
    "factor": Param(float, default=2.0, doc="multiplier"),
    "delay": Param(float, default=0.0, minimum=0.0, doc="seconds to wait per batch"),
}
SCALE = StageDefinition(
    name="scale",
    factory=Scale.factory,
    summary="multiply values",
    params=_SCALE_PARAMS,
    holds_records=False,  # each batch out as it comes: an actor lost is restarted
)
FLAKY = StageDefinition(
    name="flaky",
    factory=flaky_factory,
    summary="crashes a few times, then scales",
    params={**_SCALE_PARAMS, "crashes": Param(int, default=1, minimum=0, doc="crashes")},
    holds_records=False,
)


class ThreadsProbe(BatchStage):
    """Sends, for every RecordBatch, one value per row: the threads its worker cuts
    row-wise work into (``setup.threads``)."""

    async def process(self, batch: list[Any], out: Emitter) -> None:
        for columnar in sort_batch(batch).batches:
            threads = np.full((len(columnar), 1), self.setup.threads, dtype=np.float32)
            await out.send(RecordBatch(values=threads, record_ids=columnar.record_ids))


THREADS_PROBE = StageDefinition(
    name="threads_probe",
    factory=ThreadsProbe.factory,
    summary="says how many threads its worker may use",
    holds_records=False,
)
# The same stage as one that does not say it keeps nothing between batches.
HOLDING = dataclasses.replace(SCALE, name="holding_scale", holds_records=None)


class RayTestStages:
    @hookimpl
    def pydotcompute_register_stages(self) -> dict[str, StageDefinition]:
        return {s.name: s for s in (SCALE, FLAKY, HOLDING, THREADS_PROBE)}


def make_plugins() -> PluginManager:
    """The installed stages (preprocess, compute...) and the two above."""
    pm = create_plugin_manager()
    pm.register_plugin(RayTestStages(), distribution="ray-tests", entry_point="ray")
    return pm
