"""Bulk sends and receives: the same effect as one-by-one calls, at one call's cost."""

from __future__ import annotations

import asyncio

import pytest
from core_helpers import Item, Other, echo_kernel, hold_kernel, until
from pydotcompute import (
    KernelContext,
    KernelState,
    MessageTypeError,
    QueueFullError,
    RingKernelRuntime,
)


async def bulk_echo(ctx: KernelContext) -> None:
    while not ctx.should_terminate:
        try:
            batch = await ctx.receive_batch(16, timeout=0.05)
        except TimeoutError:
            continue
        await ctx.send_many(batch)


async def test_send_many_and_receive_batch_keep_order_and_counts() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("e", bulk_echo, queue_size=8)
        await rt.activate("e")
        sent = [Item(value=i) for i in range(100)]
        got: list[Item] = []

        async def collect() -> None:
            while len(got) < 100:
                got.extend(await rt.receive_batch("e", 10, timeout=2))

        # more than the queues hold: send_many waits for room while results are read
        await asyncio.gather(rt.send_many("e", sent), collect())
        assert got == sent
        t = rt.get_telemetry("e")
        assert (t.messages_received, t.messages_processed, t.messages_sent) == (100, 100, 100)


async def test_send_many_type_checks_everything_before_queueing_anything() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("typed", hold_kernel, input_type=Item)
        with pytest.raises(MessageTypeError, match="sent a Other"):
            await rt.send_many("typed", [Item(), Other()])
        assert rt.get_telemetry("typed").messages_received == 0


async def test_send_many_under_reject_says_how_many_went_in() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("r", hold_kernel, queue_size=3, backpressure="reject")
        with pytest.raises(QueueFullError) as info:
            await rt.send_many("r", [Item(value=i) for i in range(5)])
        assert info.value.accepted == 3
        assert [m.value for m in rt.pending("r")] == [0, 1, 2]


async def test_ctx_send_many_round_robin_deals_one_at_a_time() -> None:
    async with RingKernelRuntime() as rt:
        for kid in ("src", "w0", "w1"):
            await rt.launch(kid, bulk_echo if kid == "src" else echo_kernel)
            await rt.activate(kid)
        await rt.connect("src", ["w0", "w1"])
        await rt.send_many("src", [Item(value=i) for i in range(6)])
        w0 = [(await rt.receive("w0", timeout=2)).value for _ in range(3)]
        w1 = [(await rt.receive("w1", timeout=2)).value for _ in range(3)]
    assert (w0, w1) == ([0, 2, 4], [1, 3, 5])


async def test_ctx_send_many_along_a_single_route_and_broadcast() -> None:
    async with RingKernelRuntime() as rt:
        for kid in ("src", "a", "b"):
            await rt.launch(kid, bulk_echo if kid == "src" else echo_kernel)
            await rt.activate(kid)
        await rt.connect("src", ["a", "b"], mode="broadcast")
        await rt.send_many("src", [Item(value=i) for i in range(4)])
        for kid in ("a", "b"):
            assert [(await rt.receive(kid, timeout=2)).value for _ in range(4)] == [0, 1, 2, 3]


async def test_receive_batch_validates_and_reports_failure() -> None:
    async def boom(ctx: KernelContext) -> None:
        raise RuntimeError("boom")

    async with RingKernelRuntime() as rt:
        await rt.launch("b", boom)
        await until(lambda: rt.state("b") is KernelState.FAILED)
        assert isinstance(rt.kernel_error("b"), RuntimeError)
        with pytest.raises(ValueError, match="max_items"):
            await rt.receive_batch("b", 0)
        await rt.launch("ok", echo_kernel)
        assert rt.kernel_error("ok") is None


async def test_ctx_send_many_into_full_reject_routes_says_how_many_went_in() -> None:
    outcome: list[int] = []

    async def burst(ctx: KernelContext) -> None:
        await ctx.receive()
        try:
            await ctx.send_many([Item(value=i) for i in range(5)])
        except QueueFullError as exc:
            outcome.append(exc.accepted)

    async with RingKernelRuntime() as rt:
        await rt.launch("src", burst)
        for kid in ("w0", "w1"):
            await rt.launch(kid, hold_kernel, queue_size=1, backpressure="reject")
        await rt.activate("src")
        # Two destinations: a round-robin route deals messages one at a time, so this
        # takes the one-by-one path; w0 is full again by the third message.
        await rt.connect("src", ["w0", "w1"])
        await rt.send("src", Item(value=-1))
        await until(lambda: bool(outcome))
        assert outcome == [2]
        assert [m.value for m in rt.pending("w0")] == [0]
        assert [m.value for m in rt.pending("w1")] == [1]
