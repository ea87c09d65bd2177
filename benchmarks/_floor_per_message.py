"""The per-message contenders: the guide's pipeline through the Python API, one message
per record (as ``--mode per-message`` feeds it), and Bytewax's per-record dataflow.

Both start from the same ``(n, 64)`` float32 array and end with the sum of the means;
each clock covers turning rows into messages (or items), both steps, and collecting every
result. Bytewax's steps are plain NumPy on one row, the cheapest code with the pipeline's
numeric policy on this data (no NaN, no constant row), so it is not slowed by the
backend's NaN handling.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import numpy as np
import numpy.typing as npt
from _floor_bytewax import two_maps
from _floor_columnar import CHUNK, GUIDE_TOML
from _floor_rounds import Round
from pydotcompute import Pipeline, records_from_array
from pydotcompute.plugins import PluginManager
from pydotcompute_stages import ComputeResult


def guide_pipeline() -> Pipeline:
    """The pipeline ``pydotcompute run examples/guide.toml`` runs."""
    return Pipeline.from_toml(GUIDE_TOML)


async def _stream(
    pipeline: Pipeline, x: npt.NDArray[np.float32], plugins: PluginManager
) -> list[float]:
    means: list[float] = []
    messages = records_from_array(x, columnar=False)
    async for result in pipeline.run(messages, plugins=plugins, relax_gc=True):
        if type(result) is not ComputeResult:
            raise AssertionError(f"the guide's pipeline gave {result!r}, not a ComputeResult")
        means.append(result.result)
    return means


def pipeline_per_message(
    pipeline: Pipeline, x: npt.NDArray[np.float32], plugins: PluginManager
) -> Round:
    """Every row of ``x`` as its own message through ``pipeline`` (with ``relax_gc``, as
    the CLI runs it), on a fresh event loop."""
    started = time.perf_counter()
    means = asyncio.run(_stream(pipeline, x, plugins))
    total = math.fsum(means)
    return Round(time.perf_counter() - started, len(means), total)


def _normalize_row(row: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    lo = row.min()
    return (row - lo) / (row.max() - lo)  # type: ignore[no-any-return]


def _mean_row(row: npt.NDArray[np.float32]) -> Any:
    return float(row.mean())


def bytewax_per_record(x: npt.NDArray[np.float32]) -> Round:
    """Every row of ``x`` as its own item through Bytewax's two maps. The source hands
    rows over ``CHUNK`` at a time, Bytewax's fastest setting here (one at a time costs
    it about 15 us more a record on this machine)."""
    started = time.perf_counter()
    means = two_maps(x, _normalize_row, _mean_row, source_batch=CHUNK)
    total = math.fsum(means)
    return Round(time.perf_counter() - started, len(means), total)
