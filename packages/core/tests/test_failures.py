from __future__ import annotations

import asyncio
import logging

import pytest
from core_helpers import Item, echo_kernel, until
from pydotcompute import KernelContext, KernelFailedError, KernelState, RingKernelRuntime


class Boom(RuntimeError):
    pass


async def fail_on_value(ctx: KernelContext) -> None:
    """Echoes values, and raises on a negative one."""
    while not ctx.should_terminate:
        try:
            msg = await ctx.receive(timeout=0.05)
        except TimeoutError:
            continue
        if msg.value < 0:
            raise Boom(f"bad value {msg.value}")
        await ctx.send(msg)


async def test_raising_kernel_is_failed_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="pydotcompute")
    async with RingKernelRuntime() as rt:
        await rt.launch("f", fail_on_value)
        await rt.activate("f")
        await rt.send("f", Item(value=-1))
        await until(lambda: rt.state("f") is KernelState.FAILED)
        telemetry = rt.get_telemetry("f")
    assert telemetry.errors == 1 and telemetry.state == "failed"
    (record,) = [r for r in caplog.records if r.name == "pydotcompute"]
    assert "kernel 'f' failed" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is Boom


async def test_send_to_failed_kernel_raises_with_the_cause() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("f", fail_on_value)
        await rt.activate("f")
        await rt.send("f", Item(value=-1))
        await until(lambda: rt.state("f") is KernelState.FAILED)
        with pytest.raises(KernelFailedError, match="kernel 'f' failed") as info:
            await rt.send("f", Item(value=1))
        assert isinstance(info.value.__cause__, Boom)


async def test_waiting_receiver_is_woken_at_once_by_the_failure() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("f", fail_on_value)
        await rt.activate("f")
        waiting = asyncio.create_task(rt.receive("f"))  # no timeout: would wait forever
        await until(lambda: rt.queue_statistics("f")[1].waiting_getters == 1)
        await rt.send("f", Item(value=-1))
        with pytest.raises(KernelFailedError) as info:
            await asyncio.wait_for(waiting, 5.0)
        assert isinstance(info.value.__cause__, Boom)


async def test_results_sent_before_the_failure_are_still_delivered() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("f", fail_on_value)
        await rt.activate("f")
        for value in (1, 2, -1):
            await rt.send("f", Item(value=value))
        await until(lambda: rt.state("f") is KernelState.FAILED)
        assert [(await rt.receive("f")).value for _ in range(2)] == [1, 2]
        with pytest.raises(KernelFailedError):
            await rt.receive("f")


async def test_blocked_sender_is_woken_by_the_failure() -> None:
    gate = asyncio.Event()

    async def stuck_then_fail(ctx: KernelContext) -> None:
        await gate.wait()
        raise Boom("late")

    async with RingKernelRuntime() as rt:
        await rt.launch("s", stuck_then_fail, queue_size=1)
        await rt.activate("s")
        await rt.send("s", Item())
        blocked = asyncio.create_task(rt.send("s", Item()))
        await until(lambda: rt.queue_statistics("s")[0].waiting_putters == 1)
        gate.set()
        with pytest.raises(KernelFailedError):
            await asyncio.wait_for(blocked, 5.0)


async def test_failure_during_startup_is_reported() -> None:
    async def bad_start(ctx: KernelContext) -> None:
        raise Boom("no config")

    runtime = RingKernelRuntime()
    async with runtime:
        await runtime.launch("b", bad_start)
        await until(lambda: runtime.state("b") is KernelState.FAILED)
        with pytest.raises(KernelFailedError, match="no config"):
            await runtime.send("b", Item())
    report = runtime.shutdown_report
    assert report is not None and not report.clean
    assert isinstance(report.kernels["b"].error, Boom)


async def test_other_kernels_keep_running_after_one_fails() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("f", fail_on_value)
        await rt.launch("e", echo_kernel)
        await rt.activate("f")
        await rt.activate("e")
        await rt.send("f", Item(value=-1))
        await until(lambda: rt.state("f") is KernelState.FAILED)
        await rt.send("e", Item(value=7))
        assert (await rt.receive("e", timeout=1)).value == 7


async def test_kernel_that_returns_early_stops_taking_messages(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="pydotcompute")

    async def one_shot(ctx: KernelContext) -> None:
        await ctx.send(await ctx.receive())

    runtime = RingKernelRuntime()
    async with runtime:
        await runtime.launch("o", one_shot)
        await runtime.activate("o")
        await runtime.send("o", Item(value=1))
        await runtime.send("o", Item(value=2))
        await until(lambda: runtime.state("o") is KernelState.TERMINATED)
        assert (await runtime.receive("o")).value == 1
        with pytest.raises(Exception, match="accepts no messages"):
            await runtime.send("o", Item(value=3))
    assert "returned before it was asked to terminate" in caplog.text
    report = runtime.shutdown_report
    assert report is not None
    assert [m.value for m in report.kernels["o"].unprocessed] == [2]
