"""distributor: fan-out round robin or by key, against the arithmetic it promises."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydotcompute import Pipeline, records_from_array
from pydotcompute.stage import Record, RecordBatch, StageError, record_ids_for_rows
from stages_helpers import plugins, run


def fan_out(mode: str, workers: int = 3, **params: Any) -> Pipeline:
    return (
        Pipeline()
        .add_stage("distributor", params={"mode": mode, **params})
        .add_stage("tag", workers=workers)
    )


async def test_round_robin_deals_messages_evenly_in_turn() -> None:
    pipeline = Pipeline().add_stage("distributor").add_stage("compute", workers=3)
    async with pipeline.open(plugins=plugins()) as run_:
        results = [
            r async for r in run_.process(records_from_array(np.ones((30, 2)), columnar=False))
        ]
        processed = [
            run_.runtime.get_telemetry(f"compute_{i}").messages_processed for i in range(3)
        ]
    assert len(results) == 30
    assert processed == [11, 11, 11]  # ten records and one end-of-stream marker each


async def test_round_robin_sends_record_batches_whole() -> None:
    x = np.ones((40, 2), dtype=np.float32)
    keys = np.arange(40)
    results = await run(
        fan_out("round_robin", workers=2), records_from_array(x, keys=keys, batch_size=10)
    )
    assert sorted(len(r) for r in results) == [10, 10, 10, 10]
    workers = sorted(int(r.values[0, 0]) for r in results)
    assert workers == [0, 0, 1, 1]
    assert all(len(set(r.values[:, 0].tolist())) == 1 for r in results)


@pytest.mark.parametrize("workers", [1, 2, 3, 5])
async def test_by_key_per_message_each_key_meets_worker_key_mod_n(workers: int) -> None:
    keys = [-7, -1, 0, 1, 2, 3, 4, 5, 9, 10, 11, 100, -100] * 2
    inputs = [Record(values=[0.0], key=k) for k in keys]
    results = await run(fan_out("key", workers=workers), inputs)
    assert len(results) == len(keys)
    for r in results:
        worker, key = int(r.values[0]), int(r.values[1])
        assert worker == key % workers  # Python modulo: negative keys land in [0, n)


async def test_by_key_columnar_splits_batches_by_key_mod_n() -> None:
    keys = np.array([5, -2, 8, 0, 3, 3, -9, 4, 1, 7, 6, 2])
    x = np.zeros((len(keys), 1), dtype=np.float32)
    results = await run(fan_out("key", workers=4), records_from_array(x, keys=keys, batch_size=5))
    assert sum(len(r) for r in results) == len(keys)
    for r in results:
        assert isinstance(r, RecordBatch)
        assert (r.values[:, 0] == r.keys % 4).all()


async def test_by_key_keeps_the_order_within_a_worker() -> None:
    keys = np.array([1, 3, 1, 1, 3, 5])
    ids = record_ids_for_rows(0, len(keys), 9)
    batch = RecordBatch(
        values=np.arange(6, dtype=np.float32).reshape(6, 1), record_ids=ids, keys=keys
    )
    pipeline = (
        Pipeline()
        .add_stage("distributor", params={"mode": "key"})
        .add_stage("aggregator", workers=2, params={"size": 100, "timeout": 3600.0})
    )
    results = await run(pipeline, [batch])
    rows = {int(r.keys[0]) % 2: r.values[:, 0].tolist() for r in results}
    assert rows == {1: [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]}  # all odd keys: worker 1, in order


async def test_a_custom_key_field() -> None:
    from dataclasses import dataclass

    from pydotcompute import message

    @message
    @dataclass
    class Reading:
        values: list[float]
        sensor: int

    inputs = [Reading(values=[1.0], sensor=s) for s in (4, 5, 6)]
    pipeline = (
        Pipeline()
        .add_stage("distributor", params={"mode": "key", "key_field": "sensor"})
        .add_stage("compute", workers=2)
    )
    results = await run(pipeline, inputs)
    assert len(results) == 3 and not any(type(r) is StageError for r in results)


async def test_records_without_a_key_are_errors() -> None:
    inputs = [Record(values=[1.0], key=2), Record(values=[2.0]), Record(values=[3.0], key=3)]
    results = await run(fan_out("key", workers=2), inputs)
    errors = [r for r in results if type(r) is StageError]
    assert [e.correlation_id for e in errors] == [inputs[1].message_id]
    assert "no integer 'key'" in errors[0].error and errors[0].stage == "distributor"
    assert len(results) == 3


async def test_a_batch_without_keys_is_an_error() -> None:
    batch = RecordBatch(values=np.ones((3, 1)), record_ids=record_ids_for_rows(0, 3, 1))
    (error,) = await run(fan_out("key", workers=2), [batch])
    assert type(error) is StageError and len(error) == 3 and "no keys" in error.error


async def test_with_nothing_downstream_it_passes_everything_through() -> None:
    x = np.ones((5, 2), dtype=np.float32)
    results = await run(
        Pipeline().add_stage("distributor", params={"mode": "key"}),
        records_from_array(x, columnar=False),
    )
    assert len(results) == 5 and all(type(r) is Record for r in results)


async def test_it_deals_among_the_workers_of_every_downstream_stage() -> None:
    pipeline = (
        Pipeline()
        .add_stage("distributor", params={"mode": "key"})
        .add_stage("left", "tag", inputs=["distributor"], workers=2)
        .add_stage("right", "tag", inputs=["distributor"], workers=1)
    )
    inputs = [Record(values=[0.0], key=k) for k in range(9)]
    results = await run(pipeline, inputs)
    assert len(results) == 9  # dealt, not broadcast
    for r in results:
        key = int(r.values[1])
        assert int(r.values[0]) == (key % 3 if key % 3 < 2 else 0)
