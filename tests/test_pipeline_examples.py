"""The example pipelines in examples/: each validates against the installed stages and
its results equal a plain numpy reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydotcompute import Pipeline, records_from_array
from pydotcompute.plugins import create_plugin_manager
from pydotcompute.stage import RecordBatch, StageError, row_index, row_indices

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def normalized(x: np.ndarray) -> np.ndarray:
    lo = x.min(axis=1, keepdims=True)
    hi = x.max(axis=1, keepdims=True)
    with np.errstate(all="ignore"):
        return np.where(hi - lo > 0, (x - lo) / (hi - lo), 0.0).astype(np.float32)


def data(n: int = 3000, width: int = 16) -> np.ndarray:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(n, width)).astype(np.float32)
    x[::50] = 4.0  # constant records
    return x


async def run(name: str, inputs: Any) -> tuple[list[Any], Pipeline]:
    pipeline = Pipeline.from_toml(EXAMPLES / name)
    results = [r async for r in pipeline.run(inputs, plugins=create_plugin_manager())]
    assert not [r for r in results if type(r) is StageError]
    return results, pipeline


@pytest.mark.parametrize("name", ["guide.toml", "fan_out_fan_in.toml", "dag.toml", "keyed.toml"])
def test_every_example_validates(name: str) -> None:
    plan = Pipeline.from_toml(EXAMPLES / name).validate(create_plugin_manager())
    assert plan.stages


async def test_guide_per_message_gives_the_mean_of_the_normalized_record() -> None:
    x = data()
    results, _ = await run("guide.toml", records_from_array(x, columnar=False))
    assert len(results) == len(x)
    means = np.empty(len(x), dtype=np.float32)
    for r in results:
        means[row_index(r.correlation_id)] = r.result
    np.testing.assert_allclose(means, normalized(x).mean(axis=1), rtol=1e-5, atol=1e-7)


async def test_guide_columnar_gives_the_same() -> None:
    x = data()
    results, _ = await run("guide.toml", records_from_array(x, batch_size=512))
    rows = np.concatenate([row_indices(r.record_ids) for r in results])
    means = np.concatenate([r.values[:, 0] for r in results])
    assert sorted(rows.tolist()) == list(range(len(x)))
    np.testing.assert_allclose(
        means[np.argsort(rows)], normalized(x).mean(axis=1), rtol=1e-5, atol=1e-7
    )


async def test_fan_out_fan_in_keeps_every_record_once_in_batches() -> None:
    x = data(10_000)
    results, _ = await run("fan_out_fan_in.toml", records_from_array(x, columnar=False))
    assert all(type(r) is RecordBatch and len(r) <= 4096 for r in results)
    assert results[0].columns == ("mean", "std", "min", "max")
    rows = np.concatenate([row_indices(r.record_ids) for r in results])
    assert sorted(rows.tolist()) == list(range(len(x)))
    table = np.concatenate([r.values for r in results])[np.argsort(rows)]
    n = normalized(x).astype(np.float64)
    expected = np.stack([n.mean(axis=1), n.std(axis=1), n.min(axis=1), n.max(axis=1)], axis=1)
    np.testing.assert_allclose(table, expected, rtol=1e-5, atol=1e-6)


async def test_dag_sends_every_record_down_both_branches() -> None:
    x = data(2000)
    results, _ = await run("dag.toml", records_from_array(x, batch_size=300))
    by_columns: dict[tuple[str, ...], list[RecordBatch]] = {}
    for r in results:
        by_columns.setdefault(r.columns, []).append(r)
    assert set(by_columns) == {("mean", "sum"), ("std", "range")}
    n = normalized(x).astype(np.float64)
    expected = {
        ("mean", "sum"): np.stack([n.mean(axis=1), n.sum(axis=1)], axis=1),
        ("std", "range"): np.stack([n.std(axis=1), n.max(axis=1) - n.min(axis=1)], axis=1),
    }
    for columns, batches in by_columns.items():
        rows = np.concatenate([row_indices(b.record_ids) for b in batches])
        assert sorted(rows.tolist()) == list(range(len(x))), columns
        table = np.concatenate([b.values for b in batches])[np.argsort(rows)]
        np.testing.assert_allclose(table, expected[columns], rtol=1e-5, atol=1e-5)


async def test_keyed_sums_statistics_per_key() -> None:
    x = data(3000)
    keys = np.random.default_rng(8).integers(-5, 6, size=len(x))
    results, _ = await run("keyed.toml", records_from_array(x, keys=keys, batch_size=256))
    # The window (10000 records) holds all 3000 here, but a timeout may split it:
    # add each key up over every batch the aggregator sent.
    totals: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    for r in results:
        assert r.columns == ("mean", "max")
        for key, row, count in zip(r.keys.tolist(), r.values, r.counts.tolist(), strict=True):
            totals[key] = totals.get(key, 0) + row.astype(np.float64)
            counts[key] = counts.get(key, 0) + count
    stats = np.stack([x.mean(axis=1), x.max(axis=1)], axis=1).astype(np.float64)
    assert sorted(totals) == sorted(set(keys.tolist()))
    for key in totals:
        np.testing.assert_allclose(
            totals[key], stats[keys == key].sum(axis=0), rtol=1e-4, atol=1e-3
        )
        assert counts[key] == int((keys == key).sum())
