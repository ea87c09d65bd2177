"""aggregator: batching N records, flushing partial batches, per-key sum/mean."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from pydotcompute import Pipeline, records_from_array
from pydotcompute.errors import ParameterValueError
from pydotcompute.stage import Record, RecordBatch, StageError, ids_to_array, row_indices
from pydotcompute_stages import ComputeResult
from stages_helpers import by_row, plugins, run

NO_TIMER = 3600.0  # a timeout no test reaches: flushes happen by size or end of stream


def aggregator(
    size: int, reduce: str = "none", timeout: float = NO_TIMER, **settings: Any
) -> Pipeline:
    params = {"size": size, "reduce": reduce, "timeout": timeout}
    return Pipeline().add_stage("aggregator", params=params, **settings)


def data(n: int, width: int = 3) -> np.ndarray:
    return np.arange(n * width, dtype=np.float32).reshape(n, width)


@pytest.mark.parametrize(("n", "size"), [(25, 10), (30, 10), (7, 100), (1, 1), (12, 1)])
async def test_per_message_records_become_batches_of_size(n: int, size: int) -> None:
    x = data(n)
    results = await run(aggregator(size, batch_size=4), records_from_array(x, columnar=False))
    sizes = [len(r) for r in results]
    assert all(type(r) is RecordBatch for r in results)
    assert sizes == [size] * (n // size) + ([n % size] if n % size else [])
    np.testing.assert_array_equal(by_row(results, n), x)


async def test_columnar_batches_are_split_and_merged_to_size() -> None:
    x = data(50)
    results = await run(aggregator(16), records_from_array(x, batch_size=7))
    assert [len(r) for r in results] == [16, 16, 16, 2]
    np.testing.assert_array_equal(by_row(results, 50), x)


async def test_fan_in_from_parallel_workers_keeps_every_record() -> None:
    x = data(120)
    pipeline = (
        Pipeline()
        .add_stage("compute", workers=3, params={"stats": ["sum"]})
        .add_stage("aggregator", params={"size": 25, "timeout": NO_TIMER})
    )
    results = await run(pipeline, records_from_array(x, columnar=False))
    assert [len(r) for r in results] == [25, 25, 25, 25, 20]
    assert results[0].columns == ("sum",)
    np.testing.assert_array_equal(by_row(results, 120)[:, 0], x.sum(axis=1))


async def test_a_partial_batch_goes_out_after_the_timeout() -> None:
    pipeline = aggregator(1000, timeout=0.01)
    async with pipeline.open(plugins=plugins()) as run_:
        inputs = [Record(values=[float(i)]) for i in range(3)]
        for record in inputs:
            await run_.send(record)
        results = run_.results()
        first = await asyncio.wait_for(anext(results), timeout=30)  # before the input ends
        assert isinstance(first, RecordBatch) and 1 <= len(first) <= 3
        await run_.end_input()
        rest = [r async for r in results]
    got = [first, *rest]
    assert sum(len(r) for r in got) == 3
    ids = np.concatenate([r.record_ids for r in got])
    assert {tuple(i) for i in ids.tolist()} == {
        tuple(i) for i in ids_to_array([r.message_id for r in inputs]).tolist()
    }


async def test_records_of_another_width_flush_the_held_ones_first() -> None:
    inputs = [Record(values=[1.0, 2.0]), Record(values=[3.0, 4.0]), Record(values=[5.0])]
    results = await run(aggregator(10, batch_size=1), inputs)
    assert sorted(r.values.shape for r in results) == [(1, 1), (2, 2)]


async def test_results_of_compute_are_gathered_by_their_statistics() -> None:
    inputs = [
        ComputeResult(result=1.0, stats={"mean": 1.0, "std": 0.5}),
        ComputeResult(result=2.0, stats={"mean": 2.0, "std": 0.25}),
    ]
    (out,) = await run(aggregator(2), inputs)
    assert out.columns == ("mean", "std")
    np.testing.assert_array_equal(out.values, [[1.0, 0.5], [2.0, 0.25]])


def reference_groups(x: np.ndarray, keys: np.ndarray, how: str) -> dict[int, np.ndarray]:
    out = {}
    for key in np.unique(keys):
        rows = x[keys == key].astype(np.float64)
        out[int(key)] = rows.sum(axis=0) if how == "sum" else rows.mean(axis=0)
    return out


@pytest.mark.parametrize("how", ["sum", "mean"])
async def test_reduce_by_key_equals_the_reference(how: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    keys = rng.integers(-3, 4, size=40)
    inputs = records_from_array(x, keys=keys, batch_size=9)
    (out,) = await run(aggregator(40, reduce=how), inputs)  # one window of all 40
    expected = reference_groups(x, keys, how)
    assert out.keys.tolist() == sorted(expected)  # ascending keys
    for key, row, count in zip(out.keys.tolist(), out.values, out.counts.tolist(), strict=True):
        np.testing.assert_allclose(row, expected[key], rtol=1e-5, atol=1e-6)
        assert count == int((keys == key).sum())
    assert out.record_ids.shape == (len(expected), 2)
    assert (row_indices(out.record_ids) >= 0).all()


async def test_reduce_without_keys_is_one_row_per_window() -> None:
    x = data(10)
    results = await run(aggregator(4, reduce="sum"), records_from_array(x, columnar=False))
    assert [r.values.shape for r in results] == [(1, 3), (1, 3), (1, 3)]
    np.testing.assert_array_equal(
        np.concatenate([r.values for r in results]),
        [x[0:4].sum(axis=0), x[4:8].sum(axis=0), x[8:10].sum(axis=0)],
    )
    assert [r.counts.tolist() for r in results] == [[4], [4], [2]]
    assert all(r.keys is None for r in results)


async def test_per_message_keys_are_carried() -> None:
    inputs = [Record(values=[1.0], key=5), Record(values=[2.0], key=-5)]
    (out,) = await run(aggregator(2), inputs)
    assert out.keys.tolist() == [5, -5]


async def test_bad_records_are_errors_not_losses() -> None:
    inputs = [Record(values=[1.0]), Record(values="x"), Record(values=[2.0])]
    results = await run(aggregator(10), inputs)
    errors = [r for r in results if type(r) is StageError]
    batches = [r for r in results if type(r) is RecordBatch]
    assert len(errors) == 1 and errors[0].correlation_id == inputs[1].message_id
    assert sum(len(b) for b in batches) == 2


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"size": 0}, "below the minimum 1"),
        ({"timeout": -1}, "below the minimum 0.0"),
        ({"reduce": "median"}, "'median' is not among"),
    ],
)
def test_bad_parameters_are_refused(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ParameterValueError, match=match):
        Pipeline().add_stage("aggregator", params=params).validate(plugins())
