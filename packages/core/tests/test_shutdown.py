from __future__ import annotations

import asyncio
import logging
import sys

import pytest
from core_helpers import Item, echo_kernel, hold_kernel, until
from pydotcompute import KernelContext, KernelState, KernelStateError, RingKernelRuntime


async def test_shutdown_processes_what_is_queued_before_stopping() -> None:
    processed: list[int] = []

    async def slowish(ctx: KernelContext) -> None:
        while not ctx.should_terminate:
            try:
                msg = await ctx.receive(timeout=0.05)
            except TimeoutError:
                continue
            await asyncio.sleep(0.001)
            processed.append(msg.value)

    runtime = RingKernelRuntime()
    async with runtime:
        await runtime.launch("s", slowish)
        await runtime.activate("s")
        for i in range(50):
            await runtime.send("s", Item(value=i))
    report = runtime.shutdown_report
    assert report is not None and report.drained and report.clean
    assert processed == list(range(50))


async def test_leftovers_are_counted_logged_and_returned(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="pydotcompute")
    runtime = RingKernelRuntime(drain_timeout=0.1)
    async with runtime:
        await runtime.launch("paused", echo_kernel)  # never activated: keeps its input
        await runtime.launch("unread", echo_kernel)
        await runtime.activate("unread")
        for i in range(3):
            await runtime.send("paused", Item(value=i))
            await runtime.send("unread", Item(value=10 + i))
        await until(lambda: runtime.get_telemetry("unread").output_queue_depth == 3)
    report = runtime.shutdown_report
    assert report is not None
    assert [m.value for m in report.kernels["paused"].unprocessed] == [0, 1, 2]
    assert [m.value for m in report.kernels["unread"].unread] == [10, 11, 12]
    assert report.leftover_count == 6 and not report.clean
    assert "messages left behind" in caplog.text and "3 unprocessed" in caplog.text


async def test_results_left_in_output_queues_can_still_be_received_after_terminate() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("e", echo_kernel)
        await rt.activate("e")
        await rt.send("e", Item(value=1))
        await until(lambda: rt.get_telemetry("e").output_queue_depth == 1)
        await rt.terminate("e")
        assert (await rt.receive("e")).value == 1
        with pytest.raises(KernelStateError, match="terminated and its output queue is empty"):
            await rt.receive("e")


async def test_sends_after_shutdown_are_refused() -> None:
    runtime = RingKernelRuntime()
    async with runtime:
        await runtime.launch("e", echo_kernel)
    with pytest.raises(KernelStateError, match="shutting down"):
        await runtime.send("e", Item())
    with pytest.raises(KernelStateError, match="shut down"):
        await runtime.launch("f", echo_kernel)
    assert await runtime.shutdown() is runtime.shutdown_report  # idempotent


async def test_send_blocked_at_shutdown_is_reported_not_lost() -> None:
    """A kernel blocked sending into its full output queue is cut off at termination;
    the message it was sending is reported as undeliverable."""
    runtime = RingKernelRuntime(drain_timeout=0.05, grace_period=0.5)
    async with runtime:
        await runtime.launch("e", echo_kernel, queue_size=1)
        await runtime.activate("e")
        for i in range(3):  # 1 in output, 1 being sent, 1 queued
            await runtime.send("e", Item(value=i))
        await until(lambda: runtime.get_telemetry("e").messages_processed == 2)
    report = runtime.shutdown_report
    assert report is not None
    leftovers = report.kernels["e"]
    assert [m.value for m in leftovers.unread] == [0]
    assert [m.value for m in leftovers.undeliverable] == [1]
    assert [m.value for m in leftovers.unprocessed] == [2]
    assert leftovers.count == 3


async def test_terminate_with_drain_waits_until_input_is_taken() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("e", echo_kernel, queue_size=100)
        for i in range(20):
            await rt.send("e", Item(value=i))
        await rt.activate("e")
        await rt.terminate("e", drain=True)
        assert rt.state("e") is KernelState.TERMINATED
        telemetry = rt.get_telemetry("e")
        assert telemetry.messages_processed == 20 and telemetry.input_queue_depth == 0
        assert [(await rt.receive("e")).value for _ in range(20)] == list(range(20))


async def test_terminate_with_drain_refuses_new_messages_meanwhile() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("h", hold_kernel)
        await rt.activate("h")
        await rt.send("h", Item())
        await rt.terminate("h", drain=True, timeout=0.05)
        with pytest.raises(KernelStateError, match="accepts no messages"):
            await rt.send("h", Item())


async def test_kernel_that_ignores_termination_is_cancelled() -> None:
    async def stubborn(ctx: KernelContext) -> None:
        await asyncio.sleep(3600)  # never checks should_terminate

    runtime = RingKernelRuntime(grace_period=0.05)
    async with runtime:
        await runtime.launch("s", stubborn)
        await runtime.activate("s")
    assert runtime.state("s") is KernelState.TERMINATED
    report = runtime.shutdown_report
    assert report is not None and not report.kernels["s"].stuck
    assert report.kernels["s"].cancelled  # the report says it had to be cancelled


async def test_a_kernel_that_stops_by_itself_is_not_reported_cancelled() -> None:
    runtime = RingKernelRuntime()
    async with runtime:
        await runtime.launch("e", echo_kernel)
        await runtime.activate("e")
    report = runtime.shutdown_report
    assert report is not None and not report.kernels["e"].cancelled


async def test_kernel_that_swallows_cancellation_forever_is_reported_stuck_and_let_go(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def immortal(ctx: KernelContext) -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except BaseException:
                continue

    # Closing the let-go coroutine makes it swallow GeneratorExit once more; Python
    # reports that as an unraisable error naming the coroutine, which this test expects.
    unraisable: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(f"{u.object!r}"))
    caplog.set_level(logging.ERROR, logger="pydotcompute")
    runtime = RingKernelRuntime(grace_period=0.01)
    async with runtime:
        await runtime.launch("i", immortal)
    report = runtime.shutdown_report
    assert report is not None and report.kernels["i"].stuck and not report.clean
    assert report.kernels["i"].cancelled
    assert "kernel 'i' ignored termination" in caplog.text
    assert "its coroutine was let go of and closed, so it cannot block exit" in caplog.text
    assert "in immortal\n    await asyncio.sleep(3600)" in caplog.text  # where it was stuck
    # Nothing is left for asyncio.run to wait for at exit, and the coroutine is closed.
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "ring-kernel:i"]
    assert any("immortal" in obj for obj in unraisable)


async def test_route_chain_is_drained_in_order_at_shutdown() -> None:
    runtime = RingKernelRuntime()
    async with runtime:
        for kid in ("a", "b", "c"):
            await runtime.launch(kid, echo_kernel)
            await runtime.activate(kid)
        await runtime.connect("a", "b")
        await runtime.connect("b", "c")
        for i in range(30):
            await runtime.send("a", Item(value=i))
    report = runtime.shutdown_report
    assert report is not None and report.drained
    assert [m.value for m in report.kernels["c"].unread] == list(range(30))
    assert report.leftover_count == 30


async def test_take_unread_hands_out_what_a_stopped_kernel_sent_and_nobody_read() -> None:
    runtime = RingKernelRuntime(drain_timeout=0.05, grace_period=0.5)
    async with runtime:
        await runtime.launch("e", echo_kernel, queue_size=1)
        await runtime.activate("e")
        for i in range(3):  # 1 in output, 1 being sent (cut off at termination), 1 queued
            await runtime.send("e", Item(value=i))
        await until(lambda: runtime.get_telemetry("e").messages_processed == 2)
        with pytest.raises(KernelStateError, match="still running; terminate it first"):
            runtime.take_unread("e")
        await runtime.terminate("e")
        assert [m.value for m in runtime.take_unread("e")] == [0, 1]
        assert runtime.take_unread("e") == []  # taken once
    report = runtime.shutdown_report
    assert report is not None
    leftovers = report.kernels["e"]
    assert leftovers.unread == () and leftovers.undeliverable == ()
    assert [m.value for m in leftovers.unprocessed] == [2]
