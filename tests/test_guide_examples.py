"""Every code block of the user's guide (shared/spec/pipelines.md) runs as written."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import guide_kernels as guide
import pytest
from pydotcompute import (
    BackpressureStrategy,
    RingKernelRuntime,
    message,
    ring_kernel,
)


@pytest.fixture(autouse=True)
def _unbind_runtime() -> Any:
    yield
    guide.runtime = None


async def test_simple_pipeline_connect_pipeline_block(capsys: pytest.CaptureFixture[str]) -> None:
    result = await guide.run_pipeline()
    assert isinstance(result, guide.ComputeResult)
    assert result.result == pytest.approx(0.5)  # mean of [0, .25, .5, .75, 1]
    assert "Result: 0.5" in capsys.readouterr().out


async def test_simple_pipeline_results_correlate_to_their_inputs() -> None:
    async with RingKernelRuntime() as runtime:
        await runtime.launch("preprocess")
        await runtime.activate("preprocess")
        raw = guide.RawData(values=[2.0, 4.0, 6.0])
        await runtime.send("preprocess", raw)
        pre = await runtime.receive("preprocess", timeout=1.0)
    assert pre.normalized == [0.0, 0.5, 1.0]
    assert pre.correlation_id == raw.message_id


async def _stage(value_fn: Any) -> Any:
    """A user stage for the coordinator examples: answers a StageResult."""

    async def stage(ctx: Any) -> None:
        while not ctx.should_terminate:
            try:
                msg = await ctx.receive(timeout=0.1)
            except TimeoutError:
                continue
            await ctx.send(value_fn(msg))

    return stage


async def test_pipeline_coordinator_runs_three_stages_and_reports_failure() -> None:
    def ok(msg: Any) -> Any:
        data = msg.data if isinstance(msg, guide.StageResult) else msg.values
        return guide.StageResult(data=data, stage="ok")

    def failing(msg: Any) -> Any:
        return guide.StageResult(data=None, success=False, error="boom", stage="stage2")

    async with RingKernelRuntime() as runtime:
        guide.runtime = runtime
        await runtime.launch("pipeline_coordinator")
        await runtime.launch("stage1", await _stage(ok))
        await runtime.launch("stage2", await _stage(ok))
        await runtime.launch("stage3", await _stage(ok))
        for kid in runtime.kernel_ids:
            await runtime.activate(kid)
        request = guide.RawData(values=[1.0, 2.0])
        await runtime.send("pipeline_coordinator", request)
        done = await runtime.receive("pipeline_coordinator", timeout=5.0)
        assert isinstance(done, guide.PipelineResult)
        assert done.correlation_id == request.message_id
        assert done.result.data == [1.0, 2.0]

    async with RingKernelRuntime() as runtime:
        guide.runtime = runtime
        await runtime.launch("pipeline_coordinator")
        await runtime.launch("stage1", await _stage(ok))
        await runtime.launch("stage2", await _stage(failing))
        await runtime.launch("stage3", await _stage(ok))
        for kid in runtime.kernel_ids:
            await runtime.activate(kid)
        request = guide.RawData(values=[1.0])
        await runtime.send("pipeline_coordinator", request)
        error = await runtime.receive("pipeline_coordinator", timeout=5.0)
        assert isinstance(error, guide.PipelineError)
        assert (error.failed_stage, error.error) == ("stage2", "boom")
        assert error.correlation_id == request.message_id
        assert runtime.get_telemetry("stage3").messages_received == 0


async def test_parallel_pipelines_round_robin_processes_every_message() -> None:
    guide.data_stream = [guide.RawData(values=[float(i), float(i + 2)]) for i in range(9)]
    runtime = await guide.parallel_pipeline()
    report = runtime.shutdown_report
    assert report is not None
    processed = [runtime.get_telemetry(f"preprocess_{i}").messages_processed for i in range(3)]
    assert processed == [3, 3, 3]
    # Nobody read the results in the guide's snippet: shutdown reports them, none lost.
    assert sum(len(report.kernels[f"preprocess_{i}"].unread) for i in range(3)) == 9
    assert report.drained


async def test_parallel_pipelines_keep_decorator_settings() -> None:
    @ring_kernel(kernel_id="bounded", queue_size=3, backpressure=BackpressureStrategy.REJECT)
    async def bounded(ctx: Any) -> None:
        while not ctx.should_terminate:
            await ctx.wait_active()
            await asyncio.sleep(0.01)

    async with RingKernelRuntime() as runtime:
        await runtime.launch("bounded_1", bounded)
        await runtime.launch("bounded_2", bounded, queue_size=5)
        t1, t2 = runtime.spec("bounded_1"), runtime.spec("bounded_2")
        await runtime.terminate("bounded_1")
        await runtime.terminate("bounded_2")
    assert (t1.input_queue_size, t1.backpressure) == (3, BackpressureStrategy.REJECT)
    assert (t2.input_queue_size, t2.output_queue_size) == (5, 5)
    assert t2.backpressure is BackpressureStrategy.REJECT


async def _echo_worker(ctx: Any) -> None:
    while not ctx.should_terminate:
        try:
            msg = await ctx.receive(timeout=0.1)
        except TimeoutError:
            continue
        await ctx.send(msg)


async def test_fan_out_distributor_round_robins_to_workers() -> None:
    async with RingKernelRuntime() as runtime:
        guide.runtime = runtime
        await runtime.launch("distributor")
        for i in range(3):
            await runtime.launch(f"worker_{i}", _echo_worker)
        for kid in runtime.kernel_ids:
            await runtime.activate(kid)
        sent = [guide.RawData(values=[float(i)]) for i in range(6)]
        for msg in sent:
            await runtime.send("distributor", msg)
        got = {
            i: [await runtime.receive(f"worker_{i}", timeout=2.0) for _ in range(2)]
            for i in range(3)
        }
    assert got == {0: [sent[0], sent[3]], 1: [sent[1], sent[4]], 2: [sent[2], sent[5]]}


async def test_fan_in_aggregator_batches_ten_and_flushes_partial_on_timeout() -> None:
    async with RingKernelRuntime() as runtime:
        await runtime.launch("aggregator")
        await runtime.activate("aggregator")
        for i in range(13):
            await runtime.send("aggregator", guide.ComputeResult(result=float(i)))
        full = await runtime.receive("aggregator", timeout=2.0)
        partial = await runtime.receive("aggregator", timeout=2.0)
    assert (full.count, full.total) == (10, float(sum(range(10))))
    assert (partial.count, partial.total) == (3, 10.0 + 11.0 + 12.0)


async def test_fan_in_aggregator_flushes_partial_batch_at_shutdown() -> None:
    runtime = RingKernelRuntime()
    async with runtime:
        await runtime.launch("aggregator")
        await runtime.activate("aggregator")
        for _ in range(4):
            await runtime.send("aggregator", guide.ComputeResult(result=1.0))
    report = runtime.shutdown_report
    assert report is not None
    (flushed,) = report.kernels["aggregator"].unread
    assert flushed.count == 4


async def test_dag_coordinator_runs_a_then_b_and_c_then_d() -> None:
    def stage_of(name: str) -> Any:
        return lambda msg: guide.StageResult(data=[name, msg], stage=name)

    async with RingKernelRuntime() as runtime:
        guide.runtime = runtime
        await runtime.launch("dag_coordinator")
        for name in "abcd":
            await runtime.launch(f"stage_{name}", await _stage(stage_of(name)))
        for kid in runtime.kernel_ids:
            await runtime.activate(kid)
        request = guide.RawData(values=[1.0])
        await runtime.send("dag_coordinator", request)
        final = await runtime.receive("dag_coordinator", timeout=5.0)
    assert isinstance(final, guide.FinalResult)
    assert final.correlation_id == request.message_id
    d_name, merged = final.result.data
    assert d_name == "d"
    assert merged.b.data[0] == "b" and merged.c.data[0] == "c"
    assert merged.b.data[1].data[0] == "a"


async def test_backpressure_slow_stage_block_loses_nothing() -> None:
    async with RingKernelRuntime() as runtime:
        await runtime.launch("slow_stage")
        await runtime.activate("slow_stage")
        sent = [guide.RawData(values=[float(i)]) for i in range(350)]

        async def produce() -> None:
            for msg in sent:
                await runtime.send("slow_stage", msg)

        async def consume() -> list[Any]:
            return [await runtime.receive("slow_stage", timeout=5.0) for _ in sent]

        _, got = await asyncio.gather(produce(), consume())
        telemetry = runtime.get_telemetry("slow_stage")
    assert got == sent
    assert telemetry.messages_dropped == telemetry.messages_rejected == 0


async def test_error_handling_resilient_stage_reports_success_and_failure() -> None:
    async with RingKernelRuntime() as runtime:
        await runtime.launch("resilient_stage")
        await runtime.activate("resilient_stage")
        await runtime.send("resilient_stage", guide.StageResult(data=21))
        await runtime.send("resilient_stage", guide.StageResult(data=None))
        good = await runtime.receive("resilient_stage", timeout=1.0)
        bad = await runtime.receive("resilient_stage", timeout=1.0)
    assert (good.success, good.data, good.stage) == (True, 42.0, "resilient_stage")
    assert (bad.success, bad.error, bad.stage) == (False, "no data", "resilient_stage")


async def test_monitoring_pipelines_reports_real_traffic(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with RingKernelRuntime(enable_telemetry=True) as runtime:
        # ... run pipeline ...
        for stage in ["stage1", "stage2", "stage3"]:
            await runtime.launch(stage, _echo_worker)
            await runtime.activate(stage)
        await runtime.connect("stage1", "stage2")
        await runtime.connect("stage2", "stage3")
        for i in range(20):
            await runtime.send("stage1", guide.RawData(values=[float(i)]))
        for _ in range(20):
            await runtime.receive("stage3", timeout=2.0)

        # Get per-stage metrics
        for stage in ["stage1", "stage2", "stage3"]:
            telemetry = runtime.get_telemetry(stage)
            print(f"{stage}:")
            print(f"  Throughput: {telemetry.throughput:.1f} msg/s")
            print(f"  Processed: {telemetry.messages_processed}")
            assert telemetry.messages_processed == 20
            assert telemetry.throughput > 0
    assert capsys.readouterr().out.count("Processed: 20") == 3


async def test_guide_loops_stop_promptly_at_shutdown(caplog: pytest.LogCaptureFixture) -> None:
    """Bare `except:` swallows everything, cancellation included; shutdown is still prompt."""
    caplog.set_level(logging.WARNING, logger="pydotcompute")
    runtime = RingKernelRuntime()
    async with runtime:
        for kid in ("preprocess", "compute", "distributor", "slow_stage", "dag_coordinator"):
            await runtime.launch(kid)
            await runtime.activate(kid)
        await runtime.launch("resilient_stage")  # never activated
    report = runtime.shutdown_report
    assert report is not None and report.clean
    # Each loop left through its own should_terminate check: none needed cancelling.
    assert not any(report.kernels[k].cancelled for k in runtime.kernel_ids)
    assert all(runtime.state(k).value == "terminated" for k in runtime.kernel_ids)
    assert not caplog.records


def test_message_decorator_accepts_guide_style_and_plain_classes() -> None:
    @message
    class Plain:
        value: int = 0

    msg = Plain(value=3)
    assert (msg.value, msg.priority, msg.correlation_id) == (3, 128, None)
