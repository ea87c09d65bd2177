"""Small stages for the core pipeline tests (core tests do not need pydotcompute-stages)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import Any

import numpy as np
from pydotcompute import KernelContext, Pipeline
from pydotcompute.plugins import PluginManager, create_plugin_manager
from pydotcompute.stage import (
    BatchStage,
    Emitter,
    Param,
    Record,
    RecordBatch,
    StageDefinition,
    StageSetup,
    hookimpl,
    root_id,
    run_stage,
    sort_batch,
    stack_records,
)


class Scale(BatchStage):
    """Multiplies every value by ``factor``; fails on a record holding ``poison``."""

    async def process(self, batch: list[Any], out: Emitter) -> None:
        factor = self.params["factor"]
        poison = self.params["poison"]
        parts = sort_batch(batch)
        groups, bad = stack_records(parts.records)
        for record, reason in bad:
            await out.send_error([record], reason)
        for group in groups:
            if poison is not None and (group.values == poison).any():
                raise ValueError(f"poison value {poison} found")
            for record, row in zip(group.records, group.values * factor, strict=True):
                await out.send(
                    Record(
                        values=row, key=getattr(record, "key", None), correlation_id=root_id(record)
                    )
                )
        for columnar in parts.batches:
            if poison is not None and (columnar.values == poison).any():
                raise ValueError(f"poison value {poison} found")
            await out.send(
                RecordBatch(
                    values=columnar.values * factor,
                    record_ids=columnar.record_ids,
                    keys=columnar.keys,
                    correlation_id=root_id(columnar),
                )
            )


class Hold(BatchStage):
    """Holds everything back until end of stream, then sends it (tests the flush)."""

    def __init__(self, setup: StageSetup) -> None:
        super().__init__(setup)
        self.held: list[Any] = []

    async def process(self, batch: list[Any], out: Emitter) -> None:
        self.held.extend(batch)

    async def finish(self, out: Emitter) -> None:
        await out.send_many(self.held)
        self.held = []


def crashing_factory(setup: StageSetup) -> Any:
    async def kernel(ctx: KernelContext) -> None:
        await ctx.receive()
        raise RuntimeError("the crash stage always crashes")

    return kernel


def flaky_factory(setup: StageSetup) -> Any:
    """A scale stage whose kernel crashes ``crashes`` times (holding one message each
    time) before it runs normally; the count is shared across restarts."""
    stage = Scale(setup)
    left = [int(setup.params["crashes"])]

    async def kernel(ctx: KernelContext) -> None:
        if left[0] > 0:
            left[0] -= 1
            await ctx.receive()
            raise RuntimeError("the flaky stage crashed")
        await run_stage(ctx, setup, stage)

    return kernel


SCALE = StageDefinition(
    name="scale",
    factory=Scale.factory,
    reads_rings=True,
    summary="multiply values",
    params={
        "factor": Param(float, default=2.0, doc="multiplier"),
        "poison": Param(float, default=None, nullable=True, doc="a value that makes it raise"),
    },
)
HOLD = StageDefinition(
    name="hold", factory=Hold.factory, reads_rings=True, summary="hold until the end"
)
CRASH = StageDefinition(name="crash", factory=crashing_factory, summary="crashes")
FLAKY = StageDefinition(
    name="flaky",
    factory=flaky_factory,
    summary="crashes a few times, then scales",
    params={
        "crashes": Param(int, default=1, minimum=0, doc="crashes before it works"),
        "factor": Param(float, default=2.0),
        "poison": Param(float, default=None, nullable=True),
    },
)
NEEDS = StageDefinition(
    name="needs",
    factory=Scale.factory,
    reads_rings=True,
    summary="has a required parameter",
    params={
        "factor": Param(float, doc="required multiplier"),
        "poison": Param(float, default=None, nullable=True),
        "mode": Param(str, default="a", choices=("a", "b")),
        "count": Param(int, default=1, minimum=1, maximum=10),
        "names": Param(tuple, default=("x",), items=str),
    },
)


class TestStages:
    @hookimpl
    def pydotcompute_register_stages(self) -> dict[str, StageDefinition]:
        return {s.name: s for s in (SCALE, HOLD, CRASH, FLAKY, NEEDS)}


def make_plugins() -> PluginManager:
    pm = create_plugin_manager(autoload=False)
    pm.register_plugin(TestStages(), distribution="core-tests", entry_point="test")
    return pm


async def collect(
    pipeline: Pipeline, inputs: Iterable[Any] | AsyncIterable[Any], pm: PluginManager
) -> list[Any]:
    return [r async for r in pipeline.run(inputs, plugins=pm)]


def rows_by_id(results: list[Any]) -> dict[Any, np.ndarray[Any, Any]]:
    """Every result record's values by its root id (UUID for records, (hi, lo) for rows)."""
    out: dict[Any, np.ndarray[Any, Any]] = {}
    for msg in results:
        if isinstance(msg, RecordBatch):
            for ids, row in zip(msg.record_ids.tolist(), msg.values, strict=True):
                out[tuple(ids)] = row
        else:
            out[root_id(msg)] = np.asarray(msg.values)
    return out
