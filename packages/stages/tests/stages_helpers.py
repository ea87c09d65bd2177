"""Running the stages of pydotcompute-stages in small pipelines, and plain references."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import numpy as np
import numpy.typing as npt
import pydotcompute_stages._plugin as stages_plugin
from pydotcompute import Pipeline
from pydotcompute.plugins import PluginManager, create_plugin_manager
from pydotcompute.stage import (
    BatchStage,
    Emitter,
    Record,
    RecordBatch,
    StageDefinition,
    StageError,
    hookimpl,
    root_id,
    row_indices,
    sort_batch,
)


class Tag(BatchStage):
    """Test stage: replaces each record's values with [its worker index, its key]."""

    async def process(self, batch: list[Any], out: Emitter) -> None:
        parts = sort_batch(batch)
        for record in parts.records:
            await out.send(
                Record(
                    values=[float(self.setup.worker), float(record.key)],
                    key=record.key,
                    correlation_id=root_id(record),
                )
            )
        for columnar in parts.batches:
            n = len(columnar)
            tags = np.stack([np.full(n, self.setup.worker), columnar.keys]).T.astype(np.float32)
            await out.send(
                RecordBatch(values=tags, record_ids=columnar.record_ids, keys=columnar.keys)
            )


TAG = StageDefinition(
    name="tag", factory=Tag.factory, reads_rings=True, summary="test: tag with the worker"
)


class TestOnly:
    @hookimpl
    def pydotcompute_register_stages(self) -> dict[str, StageDefinition]:
        return {"tag": TAG}


def plugins() -> PluginManager:
    """A fresh manager holding exactly this distribution's stages and the test stage."""
    pm = create_plugin_manager(autoload=False)
    assert pm.register_plugin(
        stages_plugin, distribution="pydotcompute-stages", entry_point="stages"
    )
    assert pm.register_plugin(TestOnly(), distribution="stages-tests", entry_point="test")
    return pm


async def run(pipeline: Pipeline, inputs: Iterable[Any]) -> list[Any]:
    return [r async for r in pipeline.run(inputs, plugins=plugins())]


def by_row(results: list[RecordBatch], n: int) -> npt.NDArray[Any]:
    """Columnar results put back in input row order (ids from records_from_array)."""
    rows = np.concatenate([row_indices(r.record_ids) for r in results])
    values = np.concatenate([r.values for r in results])
    assert sorted(rows.tolist()) == list(range(n)), "every record exactly once"
    return values[np.argsort(rows)]


def by_id(results: list[Any]) -> dict[UUID, Any]:
    out = {}
    for r in results:
        assert type(r) is not StageError, r
        out[root_id(r)] = r
    return out


def ref_minmax(x: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """The normalization policy, row by row in plain numpy."""
    arr = np.asarray(x, dtype=np.float32)
    out = np.zeros_like(arr)
    with np.errstate(all="ignore"):
        for i, row in enumerate(arr):
            real = row[~np.isnan(row)]
            if real.size == 0:
                out[i] = np.nan
                continue
            lo, hi = real.min(), real.max()
            span = np.float32(hi - lo)
            out[i] = (row - lo) / span if span > 0 else np.where(np.isnan(row), np.nan, 0.0)
    return out


EDGE_ROWS = np.array(
    [
        [1, 2, 3, 4, 5, 6],
        [7, 7, 7, 7, 7, 7],  # constant
        [np.nan, 1, 2, 3, np.nan, 5],  # NaN entries
        [np.nan] * 6,  # all NaN
        [-np.inf, 0, 1, 2, 3, 4],  # infinite range
        [-5, -4, -3, -2, -1, 0],
        [0, 0, 0, 0, 0, 1e-30],  # tiny range
        [3e38, -3e38, 0, 1, 2, 3],  # range overflows float32
    ],
    dtype=np.float32,
)
