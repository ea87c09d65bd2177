"""The example pipelines in examples/: each validates against the installed stages and
its results equal a plain numpy reference."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydotcompute import Pipeline, PipelineRun, records_from_array
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


# -- every example through the wire ------------------------------------------------------
#
# Wire-check mode passes every message between the host and the workers, and between
# workers, through its wire form: each example must give exactly what it gives without it.
# The data are small integers, so that every sum (an aggregator's per-key totals, which a
# timeout may split differently from run to run) is exact in float32 whatever its order.


def integer_data(n: int, width: int = 16) -> np.ndarray:
    x = np.random.default_rng(11).integers(-8, 9, size=(n, width)).astype(np.float32)
    x[::50] = 3.0  # constant records
    return x


WIRE_CASES: dict[str, tuple[Any, bool]] = {
    # example: (inputs, whether the local engine promises their order)
    "guide.toml": (lambda: records_from_array(integer_data(1500), columnar=False, run_id=1), True),
    "clip.toml": (lambda: records_from_array(integer_data(1500), batch_size=200, run_id=2), True),
    "fan_out_fan_in.toml": (
        lambda: records_from_array(integer_data(3000), columnar=False, run_id=3),
        False,
    ),
    "dag.toml": (lambda: records_from_array(integer_data(2000), batch_size=300, run_id=4), False),
    "keyed.toml": (
        lambda: records_from_array(
            integer_data(3000),
            keys=np.arange(3000) % 11 - 5,
            batch_size=256,
            run_id=5,
        ),
        False,
    ),
}


def test_every_example_has_a_wire_case() -> None:
    assert sorted(WIRE_CASES) == sorted(p.name for p in EXAMPLES.glob("*.toml"))


def example_plugins(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The installed stages, and the example plugin's ``clip`` from its source tree."""
    import importlib

    monkeypatch.syspath_prepend(str(EXAMPLES / "plugin" / "src"))
    clip = importlib.import_module("pydotcompute_example_clip")
    pm = create_plugin_manager()
    if "clip" not in pm.stages():
        pm.register_plugin(clip, distribution="pydotcompute-example-clip", entry_point="clip")
    return pm


def canonical(results: list[Any]) -> list[tuple[Any, ...]]:
    """One tuple per result record, with the bytes of its values; rows an aggregator
    reduced (they carry counts and fresh ids) are added up per key instead."""
    rows: list[tuple[Any, ...]] = []
    reduced: dict[tuple[Any, ...], tuple[np.ndarray, int]] = {}
    for r in results:
        if type(r) is RecordBatch:
            ids = r.record_ids.tolist()
            keys = [None] * len(r) if r.keys is None else r.keys.tolist()
            for i in range(len(r)):
                if r.counts is not None:
                    group = (r.columns, r.field, keys[i], str(r.values.dtype))
                    total, count = reduced.get(group, (np.zeros(r.values.shape[1]), 0))
                    reduced[group] = (total + r.values[i], count + int(r.counts[i]))
                    continue
                row = r.values[i]
                rows.append(
                    (r.columns, r.field, tuple(ids[i]), keys[i], str(row.dtype), row.tobytes())
                )
        else:
            fields = dataclasses.asdict(r)
            del fields["message_id"]  # drawn afresh for each result
            rows.append((type(r).__name__, repr(sorted(fields.items()))))
    for group, (total, count) in sorted(reduced.items(), key=repr):
        rows.append((*group, total.tobytes(), count))
    return rows


@pytest.mark.parametrize("name", sorted(WIRE_CASES))
async def test_every_example_gives_the_same_results_through_the_wire(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_inputs, ordered = WIRE_CASES[name]
    plan = Pipeline.from_toml(EXAMPLES / name).validate(example_plugins(monkeypatch))
    outcomes = []
    for wire_check in (False, True):
        async with PipelineRun(plan, wire_check=wire_check) as run:
            results = [r async for r in run.process(make_inputs())]
        assert results and not [r for r in results if type(r) is StageError]
        outcomes.append(canonical(results))
    plain, wired = outcomes
    assert len(wired) == len(plain)
    if ordered:
        assert wired == plain
    else:
        assert sorted(wired, key=repr) == sorted(plain, key=repr)
