"""Running pipelines: wiring, results with their ids, end of stream, failures, telemetry."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import numpy as np
import pytest
from pipeline_helpers import collect, make_plugins, rows_by_id
from pydotcompute import (
    BackpressureStrategy,
    KernelState,
    Pipeline,
    QueueFullError,
    RingKernelRuntime,
    StageFailedError,
    records_from_array,
)
from pydotcompute.backend import NumpyBackend
from pydotcompute.dataflow import StagePorts
from pydotcompute.errors import PipelineStateError, PipelineStoppedError, RingKernelError
from pydotcompute.plugins import PluginManager
from pydotcompute.stage import (
    Emitter,
    Record,
    RecordBatch,
    StageError,
    StageSetup,
    array_to_ids,
    record_ids_for_rows,
    row_indices,
)


@pytest.fixture
def pm() -> PluginManager:
    return make_plugins()


def data(n: int = 50, width: int = 4) -> np.ndarray[Any, Any]:
    return np.arange(n * width, dtype=np.float32).reshape(n, width)


async def test_a_chain_per_message_keeps_every_record_and_its_id(pm: PluginManager) -> None:
    x = data()
    inputs = list(records_from_array(x, columnar=False, run_id=7))
    pipeline = Pipeline().add_stage("a", "scale").add_stage("b", "scale", params={"factor": 3.0})
    results = await collect(pipeline, inputs, pm)
    assert len(results) == len(x)
    assert all(type(r) is Record for r in results)
    by_id = rows_by_id(results)
    for record, row in zip(inputs, x, strict=True):
        np.testing.assert_array_equal(by_id[record.message_id], row * 6.0)


async def test_a_chain_columnar_keeps_every_record_and_its_id(pm: PluginManager) -> None:
    x = data(100)
    pipeline = Pipeline().add_stage("a", "scale").add_stage("b", "scale")
    results = await collect(pipeline, records_from_array(x, batch_size=16, run_id=3), pm)
    assert all(type(r) is RecordBatch for r in results)
    rows = np.concatenate([row_indices(r.record_ids) for r in results])
    values = np.concatenate([r.values for r in results])
    assert sorted(rows.tolist()) == list(range(100))
    np.testing.assert_array_equal(values[np.argsort(rows)], x * 4.0)


async def test_workers_share_a_stage_and_every_record_comes_out_once(pm: PluginManager) -> None:
    x = data(200)
    pipeline = (
        Pipeline()
        .add_stage("a", "scale", workers=3, batch_size=7)
        .add_stage("b", "scale", workers=2, batch_size=5)
    )
    async with pipeline.open(plugins=pm) as run:
        results = [r async for r in run.process(records_from_array(x, columnar=False))]
        telemetry = run.telemetry()
        workers = [kid for kid in run.runtime.kernel_ids if kid.startswith("a")]
        assert workers == ["a_0", "a_1", "a_2"]
    assert len(results) == 200
    assert len({r.correlation_id for r in results}) == 200
    assert telemetry["a"].workers == 3 and telemetry["a"].records_in == 200
    assert telemetry["b"].records_out == 200
    # Round robin reached every worker of both stages.
    assert run.runtime.get_telemetry("a_2").messages_processed > 0
    assert run.runtime.get_telemetry("b_1").messages_processed > 0


async def test_fan_out_to_two_stages_and_fan_in_gives_each_record_twice(pm: PluginManager) -> None:
    x = data(30)
    pipeline = (
        Pipeline()
        .add_stage("a", "scale", params={"factor": 1.0})
        .add_stage("b", "scale", inputs=["a"], params={"factor": 2.0}, workers=2)
        .add_stage("c", "scale", inputs=["a"], params={"factor": 3.0})
        .add_stage("d", "scale", inputs=["b", "c"], params={"factor": 1.0})
    )
    inputs = list(records_from_array(x, columnar=False))
    results = await collect(pipeline, inputs, pm)
    assert len(results) == 60
    got: dict[Any, list[float]] = {}
    for r in results:
        got.setdefault(r.correlation_id, []).append(float(r.values[0]))
    for record, row in zip(inputs, x, strict=True):
        assert sorted(got[record.message_id]) == sorted([row[0] * 2.0, row[0] * 3.0])


async def test_fan_out_to_single_worker_stages_uses_broadcast_routes(pm: PluginManager) -> None:
    pipeline = (
        Pipeline()
        .add_stage("a", "scale")
        .add_stage("b", "scale", inputs=["a"])
        .add_stage("c", "scale", inputs=["a"])
    )
    results = await collect(pipeline, records_from_array(data(10), columnar=False), pm)
    assert len(results) == 20  # two sinks, each gets every record


async def test_two_source_stages_both_get_every_input(pm: PluginManager) -> None:
    pipeline = Pipeline().add_stage("a", "scale", inputs=[]).add_stage("b", "scale", inputs=[])
    results = await collect(pipeline, records_from_array(data(10), batch_size=3), pm)
    assert sum(len(r) for r in results) == 20


async def test_the_end_of_stream_flushes_what_a_stage_holds(pm: PluginManager) -> None:
    pipeline = Pipeline().add_stage("hold").add_stage("a", "scale")
    results = await collect(pipeline, records_from_array(data(25), columnar=False), pm)
    assert len(results) == 25


async def test_an_empty_input_ends_with_no_results(pm: PluginManager) -> None:
    pipeline = Pipeline().add_stage("a", "scale").add_stage("hold")
    assert await collect(pipeline, [], pm) == []


async def test_async_iterable_inputs(pm: PluginManager) -> None:
    async def gen() -> Any:
        for row in data(5):
            yield Record(values=row)

    results = await collect(Pipeline().add_stage("a", "scale"), gen(), pm)
    assert len(results) == 5


async def test_records_a_stage_fails_on_come_out_as_stage_errors(pm: PluginManager) -> None:
    x = data(20)
    pipeline = (
        Pipeline()
        .add_stage("a", "scale", params={"factor": 1.0, "poison": float(x[5, 0])}, batch_size=1)
        .add_stage("b", "scale")
    )
    inputs = list(records_from_array(x, columnar=False))
    results = await collect(pipeline, inputs, pm)
    errors = [r for r in results if type(r) is StageError]
    assert len(results) == 20 and len(errors) == 1
    (error,) = errors
    assert error.stage == "a" and error.kernel == "a"
    assert "ValueError: poison value" in error.error
    assert error.correlation_id == inputs[5].message_id
    assert array_to_ids(error.record_ids) == [inputs[5].message_id]


async def test_a_failed_columnar_batch_names_all_its_records(pm: PluginManager) -> None:
    x = data(20)
    pipeline = Pipeline().add_stage("a", "scale", params={"poison": float(x[5, 0])}, batch_size=1)
    results = await collect(pipeline, records_from_array(x, batch_size=8), pm)
    errors = [r for r in results if type(r) is StageError]
    (error,) = errors
    assert sorted(row_indices(error.record_ids).tolist()) == list(range(8))
    assert sum(len(r) for r in results) == 20


async def test_a_record_without_numbers_is_an_error_and_the_rest_go_through(
    pm: PluginManager,
) -> None:
    good = [Record(values=[1.0, 2.0]), Record(values=[3.0, 4.0])]
    bad = Record(values=["x", None])
    results = await collect(Pipeline().add_stage("a", "scale"), [good[0], bad, good[1]], pm)
    errors = [r for r in results if type(r) is StageError]
    assert len(errors) == 1 and errors[0].correlation_id == bad.message_id
    assert {r.correlation_id for r in results if type(r) is Record} == {g.message_id for g in good}


async def test_records_of_different_widths_are_all_processed(pm: PluginManager) -> None:
    inputs = [Record(values=[1.0] * w) for w in (3, 5, 3, 1)]
    results = await collect(Pipeline().add_stage("a", "scale"), inputs, pm)
    assert sorted(len(r.values) for r in results) == [1, 3, 3, 5]


async def test_a_crashing_kernel_stops_the_run_naming_the_stage(pm: PluginManager) -> None:
    pipeline = Pipeline().add_stage("a", "scale").add_stage("boom", "crash").add_stage("c", "scale")
    with pytest.raises(StageFailedError) as info:
        await collect(pipeline, records_from_array(data(50), columnar=False), pm)
    assert info.value.stage == "boom" and info.value.kernel_id == "boom"
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "always crashes" in str(info.value)


async def test_an_input_iterator_that_raises_stops_the_run_with_its_error(
    pm: PluginManager,
) -> None:
    def inputs() -> Any:
        yield Record(values=[1.0])
        raise OSError("disk went away")

    with pytest.raises(OSError, match="disk went away"):
        await collect(Pipeline().add_stage("a", "scale"), inputs(), pm)


async def test_leaving_the_results_early_shuts_the_run_down(pm: PluginManager) -> None:
    pipeline = Pipeline().add_stage("a", "scale", queue_size=4)
    async with pipeline.open(plugins=pm) as run:
        async for _ in run.process(records_from_array(data(500), columnar=False)):
            break
    assert run.report is not None
    assert all(k.state in ("terminated",) for k in run.report.kernels.values())


@pytest.mark.parametrize("sinks", [1, 2])
async def test_stop_and_collect_returns_every_result_computed_and_not_read(
    pm: PluginManager, sinks: int
) -> None:
    """A run given up on mid-stream: what the sinks computed and nobody read (in their
    queues, or taken by a reader that was cancelled) comes back; nothing is lost."""
    pipeline = Pipeline().add_stage("a", "scale", queue_size=4)
    for i in range(sinks):
        pipeline.add_stage(f"sink{i}", "scale", inputs=["a"], queue_size=4)
    inputs = list(records_from_array(data(400), columnar=False))
    seen: list[Any] = []
    async with pipeline.open(plugins=pm) as run:
        reading = asyncio.ensure_future(_read_into(run.process(inputs), seen))
        await until_count(seen, 20)
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        collected = await run.stop_and_collect()
    assert run.report is not None
    got = collections.Counter(m.correlation_id for m in seen + collected)
    assert max(got.values()) <= sinks  # none twice from one sink
    left = sum(len(k.unprocessed) + len(k.undeliverable) for k in run.report.kernels.values())
    held = sum(t.messages_dead_lettered for t in run.telemetry().values())
    # Every record the first stage took is a result, or left behind or dead-lettered
    # where it stopped.
    taken = run.telemetry()["a"].records_in
    assert sum(got.values()) + sinks * (left + held) >= taken * sinks > 0
    assert all(len(k.unread) == 0 for name, k in run.report.kernels.items() if "sink" in name)


async def _read_into(results: Any, into: list[Any]) -> None:
    async for msg in results:
        into.append(msg)


async def until_count(items: list[Any], n: int) -> None:
    for _ in range(1000):
        if len(items) >= n:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"fewer than {n} results came")


@pytest.mark.parametrize("strategy", ["drop_oldest", "reject"])
async def test_lossy_backpressure_still_ends_the_run(pm: PluginManager, strategy: str) -> None:
    """A lossy queue may lose records (counted), but never the end of the stream."""
    pipeline = (
        Pipeline()
        .add_stage("a", "hold")
        .add_stage("b", "scale", queue_size=2, backpressure=strategy, batch_size=1)
    )
    async with pipeline.open(plugins=pm) as run:
        results = [r async for r in run.process(records_from_array(data(50), columnar=False))]
        telemetry = run.telemetry()
    lost = telemetry["b"].messages_dropped + telemetry["b"].messages_rejected
    assert len(results) + lost >= 50
    assert len(results) <= 50
    if strategy == "reject":
        # "hold" sends its 50 records in one send_many: each refusal is counted
        # against one record, and the rest of the call still goes on.
        assert telemetry["a"].records_rejected == 50 - len(results)
        assert telemetry["a"].records_out == len(results)
        # Each refused record cost one message; a's end marker got past the full queue.
        assert telemetry["b"].messages_rejected == telemetry["a"].records_rejected


async def test_a_full_reject_source_refuses_input_and_counts_it(pm: PluginManager) -> None:
    pipeline = Pipeline().add_stage(
        "a", "scale", queue_size=1, backpressure=BackpressureStrategy.REJECT
    )
    async with pipeline.open(plugins=pm) as run:
        for row in data(5):
            await run.send(Record(values=row))
        await run.end_input()
        results = [r async for r in run.results()]
    assert len(results) + run.records_rejected_at_input == 5
    assert run.records_fed == 5


async def test_a_pipeline_can_join_a_users_runtime(pm: PluginManager) -> None:
    async with RingKernelRuntime() as runtime:
        pipeline = Pipeline().add_stage("a", "scale")
        async with pipeline.open(runtime=runtime, plugins=pm, prefix="p1.") as run:
            results = [r async for r in run.process(records_from_array(data(10), columnar=False))]
        assert len(results) == 10
        assert "p1.a" in runtime.kernel_ids
        assert runtime.state("p1.a") is KernelState.TERMINATED
        assert run.report is None  # the user's runtime is not shut down


async def test_telemetry_counts_records_and_messages(pm: PluginManager) -> None:
    pipeline = Pipeline("t").add_stage("a", "scale").add_stage("b", "scale")
    async with pipeline.open(plugins=pm) as run:
        results = [r async for r in run.process(records_from_array(data(64), batch_size=16))]
        telemetry = run.telemetry()
        # Each worker reports its records in its kernel's telemetry: the run reads them there.
        reported = run.runtime.get_telemetry("a").counts
    assert sum(len(r) for r in results) == 64
    a = telemetry["a"]
    assert a.records_in == 64 and a.records_out == 64 and a.records_failed == 0
    assert reported == {
        "records_in": 64,
        "records_out": 64,
        "records_failed": 0,
        "records_rejected": 0,
    }
    assert a.messages_processed == 5  # four batches and the end-of-stream marker
    assert a.stage_type == "scale" and a.backend == "numpy" and a.workers == 1
    assert a.records_per_s > 0 and a.seconds > 0
    assert set(a.to_dict()) >= {"stage", "records_in", "records_per_s", "input_queue_depth"}
    assert list(telemetry) == ["a", "b"]


async def test_send_after_end_input_is_refused(pm: PluginManager) -> None:
    async with Pipeline().add_stage("a", "scale").open(plugins=pm) as run:
        await run.end_input()
        with pytest.raises(PipelineStateError, match="input was ended"):
            await run.send(Record(values=[1.0]))
        with pytest.raises(PipelineStateError, match="input was ended"):
            await run.send_many([Record(values=[1.0])])
        assert [r async for r in run.results()] == []


async def test_misusing_a_run_raises_pipeline_state_errors(pm: PluginManager) -> None:
    run = Pipeline().add_stage("a", "scale").open(plugins=pm)
    with pytest.raises(PipelineStateError, match="not started"):
        _ = run.runtime
    async with run:
        results = [r async for r in run.process([Record(values=[1.0])])]
        assert len(results) == 1
        with pytest.raises(PipelineStateError, match="process\\(\\) runs once"):
            async for _ in run.process([]):
                pass
    # Callers that caught RuntimeError before these had a class still catch them.
    assert issubclass(PipelineStateError, RuntimeError)
    assert issubclass(PipelineStateError, RingKernelError)


async def test_a_worker_stopped_from_outside_stops_the_run_naming_it(pm: PluginManager) -> None:
    async with RingKernelRuntime() as runtime:
        pipeline = Pipeline().add_stage("a", "scale")
        async with pipeline.open(runtime=runtime, plugins=pm, prefix="p.") as run:
            await runtime.terminate("p.a")  # not a failure: the worker just stops
            with pytest.raises(PipelineStoppedError) as info:
                async for _ in run.results():
                    pass
        assert info.value.kernels == {"p.a": "terminated"}
        assert "'p.a' (terminated)" in str(info.value)
        assert isinstance(info.value, RuntimeError)


async def test_runs_are_independent(pm: PluginManager) -> None:
    pipeline = Pipeline().add_stage("a", "scale")
    first, second = await asyncio.gather(
        collect(pipeline, records_from_array(data(10), columnar=False), pm),
        collect(pipeline, records_from_array(data(7), columnar=False), pm),
    )
    assert (len(first), len(second)) == (10, 7)


async def test_closing_the_run_generator_early_shuts_it_down(pm: PluginManager) -> None:
    import contextlib

    async with RingKernelRuntime() as runtime:
        pipeline = Pipeline().add_stage("a", "scale", queue_size=4)
        gen = pipeline.run(
            records_from_array(data(500), columnar=False), runtime=runtime, plugins=pm
        )
        async with contextlib.aclosing(gen) as results:
            async for _ in results:
                break
        assert runtime.state("a") is KernelState.TERMINATED


class RefusingContext:
    """A KernelContext stand-in whose bulk send takes ``room`` messages per call, then
    refuses the next one, as a full REJECT queue does."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.queued: list[Any] = []
        self.calls = 0
        self.counts: dict[str, int] = {}

    async def send_many(self, msgs: Any) -> None:
        self.calls += 1
        if len(msgs) <= self.room:
            self.queued.extend(msgs)
            return
        self.queued.extend(msgs[: self.room])
        raise QueueFullError("full", accepted=self.room)


async def test_send_many_into_a_reject_queue_counts_each_refusal_and_goes_on() -> None:
    ctx = RefusingContext(room=3)
    setup = StageSetup(
        stage="s",
        kernel_id="s",
        worker=0,
        workers=1,
        params={},
        backend=NumpyBackend(),
        batch_size=8,
        ports=StagePorts(downstream=(("t",),), routed=True, producers=("<feeder>",)),
    )
    out = Emitter(ctx, setup)  # type: ignore[arg-type]
    batch = RecordBatch(
        values=np.zeros((5, 2), np.float32), record_ids=record_ids_for_rows(0, 5, 1)
    )
    records = [Record(values=[float(i)]) for i in range(9)]
    msgs = [*records[:4], batch, *records[4:]]  # 10 messages, 14 records
    await out.send_many(msgs)
    # Calls take 3, refuse the 4th: [r0 r1 r2] x r3, [batch r4 r5] x r6, [r7 r8].
    assert ctx.queued == [
        records[0],
        records[1],
        records[2],
        batch,
        records[4],
        records[5],
        records[7],
        records[8],
    ]
    assert ctx.calls == 3
    assert ctx.counts["records_rejected"] == 2 and ctx.counts["records_out"] == 12


@pytest.mark.parametrize(
    ("strategy", "lost"), [("reject", "messages_rejected"), ("drop_oldest", "messages_dropped")]
)
async def test_the_end_marker_gets_past_a_full_lossy_queue(
    pm: PluginManager, strategy: str, lost: str
) -> None:
    """A full REJECT queue refuses data and a DROP_OLDEST one evicts it, but the end of
    the stream is a control message: it always gets in, so the run always ends."""
    async with RingKernelRuntime() as runtime:
        pipeline = Pipeline().add_stage("a", "scale", queue_size=2, backpressure=strategy)
        async with pipeline.open(runtime=runtime, plugins=pm, prefix="p.") as run:
            await runtime.deactivate("p.a")  # takes nothing: its queue fills
            for value in (1.0, 2.0, 3.0):
                await run.send(Record(values=[value]))
            await run.end_input()
            queued = runtime.get_telemetry("p.a")
            assert queued.input_queue_depth == 3  # two records and the marker
            assert getattr(queued, lost) == 1
            await runtime.reactivate("p.a")
            results = [r async for r in run.results()]
        kept = [1.0, 2.0] if strategy == "reject" else [2.0, 3.0]
        assert [r.values[0] / 2 for r in results] == kept
        telemetry = runtime.get_telemetry("p.a")
        assert telemetry.messages_received == 4 and telemetry.books_balance


async def test_an_end_marker_from_a_stranger_fails_the_worker_naming_it(
    pm: PluginManager,
) -> None:
    from pydotcompute.errors import StreamProtocolError
    from pydotcompute.stage import EndOfStream

    async with RingKernelRuntime() as runtime:
        pipeline = Pipeline().add_stage("a", "scale").add_stage("b", "scale")
        async with pipeline.open(runtime=runtime, plugins=pm, prefix="p.") as run:
            await runtime.send_control("p.b", EndOfStream(source="stranger"))
            with pytest.raises(StageFailedError) as info:
                async for _ in run.results():
                    pass
    assert info.value.stage == "b"
    assert isinstance(info.value.__cause__, StreamProtocolError)
    assert "from 'stranger', which is not one of its producers ('p.a')" in str(info.value.__cause__)
