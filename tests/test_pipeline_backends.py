"""The built-in stages give the numpy backend's results on every other CPU backend:
the same pipeline, backend switched per stage by name."""

from __future__ import annotations

import numpy as np
import pytest
from pydotcompute._pipeline import Pipeline
from pydotcompute._pipeline_feed import records_from_array
from pydotcompute._pipeline_records import RecordBatch, row_indices
from pydotcompute._plugins import create_plugin_manager

STATS = ["mean", "std", "var", "min", "max", "sum", "range"]


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(500, 12)).astype(np.float32)
    x[::9] = 2.0  # constant records
    x[4, 3] = np.nan
    x[10, :] = np.nan
    return x, np.arange(500) % 7 - 3


async def run(backend: str, x: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, RecordBatch]:
    plugins = create_plugin_manager()
    stats_pipeline = (
        Pipeline()
        .add_stage("preprocess", backend=backend)
        .add_stage("compute", backend=backend, params={"stats": STATS})
    )
    results = [
        r async for r in stats_pipeline.run(records_from_array(x, batch_size=64), plugins=plugins)
    ]
    rows = np.concatenate([row_indices(r.record_ids) for r in results])
    table = np.concatenate([r.values for r in results])[np.argsort(rows)]
    reduce_pipeline = (
        Pipeline()
        .add_stage("distributor", backend=backend, params={"mode": "key"})
        .add_stage(
            "aggregator",
            backend=backend,
            params={"size": 10_000, "reduce": "sum", "timeout": 3600.0},
        )
    )
    (sums,) = [
        r
        async for r in reduce_pipeline.run(
            records_from_array(np.nan_to_num(x), keys=keys), plugins=plugins
        )
    ]
    return table, sums


@pytest.mark.parametrize("backend", ["torch"])
async def test_a_cpu_backend_matches_numpy(backend: str) -> None:
    pytest.importorskip("pydotcompute_triton")
    if backend not in create_plugin_manager().backends():
        pytest.skip(f"backend {backend!r} is not installed")
    x, keys = data()
    expected_table, expected_sums = await run("numpy", x, keys)
    table, sums = await run(backend, x, keys)
    np.testing.assert_allclose(table, expected_table, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert sums.keys.tolist() == expected_sums.keys.tolist()
    assert sums.counts.tolist() == expected_sums.counts.tolist()
    np.testing.assert_allclose(sums.values, expected_sums.values, rtol=1e-5, atol=1e-5)
