"""Fault injection (issue 5): stages that raise every Nth message, hang, fail at
start-up or leave their loop early, in three-stage chains, with restarts, and with
shutdown in the middle. Exact counts, and the books balance for every kernel."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from core_helpers import Item, echo_kernel, until
from pydotcompute import (
    DeadLetterReason,
    KernelContext,
    KernelFailedError,
    KernelState,
    RestartPolicy,
    RingKernelRuntime,
)

N = 100
EVERY = 10
RESTART_MANY = RestartPolicy.on_failure(max_restarts=1000, window=60, backoff=0.0)


class Injected(RuntimeError):
    pass


def raising_every(nth: int) -> Callable[[KernelContext], Awaitable[None]]:
    async def kernel(ctx: KernelContext) -> None:
        while not ctx.should_terminate:
            try:
                msg = await ctx.receive(timeout=0.05)
            except TimeoutError:
                continue
            if msg.value % nth == nth - 1:
                raise Injected(f"message {msg.value}")
            await ctx.send(msg)

    return kernel


async def chain(rt: RingKernelRuntime, middle: Any, **middle_settings: Any) -> None:
    await rt.launch("first", echo_kernel)
    await rt.launch("middle", middle, **middle_settings)
    await rt.launch("last", echo_kernel)
    for kid in ("first", "middle", "last"):
        await rt.activate(kid)
    await rt.connect("first", "middle")
    await rt.connect("middle", "last")


def assert_books(rt: RingKernelRuntime) -> None:
    for kid in rt.kernel_ids:
        assert rt.get_telemetry(kid).books_balance, kid


async def test_stage_raising_every_nth_message_is_restarted_and_loses_only_those() -> None:
    async with RingKernelRuntime() as rt:
        await chain(rt, raising_every(EVERY), restart=RESTART_MANY)
        for i in range(N):
            await rt.send("first", Item(value=i))
        got = [(await rt.receive("last", timeout=5)).value for _ in range(N - N // EVERY)]
        poisoned = [i for i in range(N) if i % EVERY == EVERY - 1]
        assert got == [i for i in range(N) if i not in poisoned]
        assert [d.message.value for d in rt.dead_letters()] == poisoned
        t = rt.get_telemetry("middle")
        assert (t.errors, t.restarts, t.messages_dead_lettered) == (10, 10, 10)
        await until(lambda: rt.state("middle") is KernelState.ACTIVE)
        assert_books(rt)


async def test_stage_raising_without_restarts_fails_and_the_failure_cascades_upstream() -> None:
    runtime = RingKernelRuntime(drain_timeout=0.2)
    async with runtime:
        await chain(runtime, raising_every(EVERY))
        for i in range(EVERY):
            await runtime.send("first", Item(value=i))
        await until(lambda: runtime.state("middle") is KernelState.FAILED)
        await runtime.send("first", Item(value=EVERY))  # first takes it, cannot send it on
        await until(lambda: runtime.state("first") is KernelState.FAILED)
        got = [(await runtime.receive("last", timeout=5)).value for _ in range(EVERY - 1)]
        assert got == list(range(EVERY - 1))
        # first could not send on: it failed too, naming middle, and says so to senders
        with pytest.raises(KernelFailedError, match="kernel 'middle' failed"):
            await runtime.send("first", Item(value=100))
        assert_books(runtime)
    report = runtime.shutdown_report
    assert report is not None
    assert isinstance(report.kernels["middle"].error, Injected)
    assert [d.message.value for d in runtime.dead_letters()] == [EVERY - 1, EVERY]
    assert [m.value for m in report.kernels["first"].undeliverable] == [EVERY]


async def test_hanging_stage_is_restarted_by_the_watchdog() -> None:
    async def hangs_on_seven(ctx: KernelContext) -> None:
        while not ctx.should_terminate:
            try:
                msg = await ctx.receive(timeout=0.05)
            except TimeoutError:
                continue
            if msg.value == 7:
                await asyncio.sleep(3600)
            await ctx.send(msg)

    policy = RestartPolicy.on_failure(max_restarts=5, backoff=0.0, restart_on_stall=True)
    async with RingKernelRuntime() as rt:
        await chain(rt, hangs_on_seven, restart=policy, stall_timeout=0.05)
        for i in range(20):
            await rt.send("first", Item(value=i))
        got = [(await rt.receive("last", timeout=5)).value for _ in range(19)]
        assert got == [i for i in range(20) if i != 7]
        (letter,) = rt.dead_letters()
        assert (letter.message.value, letter.reason) == (7, DeadLetterReason.STALLED)
        t = rt.get_telemetry("middle")
        assert (t.stalls, t.restarts) == (1, 1)
        assert_books(rt)


async def test_stage_raising_during_startup_is_retried_then_fails() -> None:
    attempts = 0

    async def bad_start(ctx: KernelContext) -> None:
        nonlocal attempts
        attempts += 1
        raise Injected("cannot open the device")

    policy = RestartPolicy.on_failure(max_restarts=3, backoff=0.001)
    runtime = RingKernelRuntime(drain_timeout=0.2)
    async with runtime:
        await chain(runtime, bad_start, restart=policy)
        await until(lambda: runtime.state("middle") is KernelState.FAILED)
        assert attempts == 4  # the first start and three restarts
        assert runtime.get_telemetry("middle").errors == 4
        assert runtime.dead_letters() == []  # it never held a message
        assert_books(runtime)


async def test_stage_that_recovers_after_startup_failures_processes_everything() -> None:
    attempts = 0

    async def flaky_start(ctx: KernelContext) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise Injected("not yet")
        await echo_kernel(ctx)

    async with RingKernelRuntime() as rt:
        await chain(
            rt, flaky_start, restart=RestartPolicy.on_failure(max_restarts=5, backoff=0.001)
        )
        for i in range(N):
            await rt.send("first", Item(value=i))
        got = [(await rt.receive("last", timeout=5)).value for _ in range(N)]
        assert got == list(range(N))
        assert rt.get_telemetry("middle").restarts == 2
        assert_books(rt)


async def test_stage_that_leaves_its_loop_early_is_reported_with_its_leftovers() -> None:
    async def quits_after_five(ctx: KernelContext) -> None:
        for _ in range(5):
            await ctx.send(await ctx.receive())

    runtime = RingKernelRuntime(drain_timeout=0.2)
    async with runtime:
        await runtime.launch("first", echo_kernel)
        await runtime.launch("middle", quits_after_five)
        await runtime.launch("last", echo_kernel)
        await runtime.connect("first", "middle")
        await runtime.connect("middle", "last")
        for i in range(N):  # all queued before anything runs
            await runtime.send("first", Item(value=i))
        for kid in ("middle", "last", "first"):
            await runtime.activate(kid)
        got = [(await runtime.receive("last", timeout=5)).value for _ in range(5)]
        assert got == [0, 1, 2, 3, 4]
        await until(lambda: runtime.state("first") is KernelState.FAILED)
        assert runtime.state("middle") is KernelState.TERMINATED
        assert_books(runtime)
    report = runtime.shutdown_report
    assert report is not None
    everywhere = (
        got
        + [d.message.value for d in runtime.dead_letters()]
        + [m.value for k in report.kernels.values() for m in (*k.unprocessed, *k.undeliverable)]
    )
    assert set(everywhere) == set(range(N))  # nothing lost without a trace


async def test_shutdown_in_the_middle_of_restarting_faults_accounts_for_everything() -> None:
    runtime = RingKernelRuntime(drain_timeout=0.5)
    async with runtime:
        await chain(runtime, raising_every(EVERY), restart=RESTART_MANY)
        for i in range(N):
            await runtime.send("first", Item(value=i))
        # leave at once: shutdown drains what it can while faults keep happening
    report = runtime.shutdown_report
    assert report is not None
    delivered = [m.value for m in report.kernels["last"].unread]
    dead = [d.message.value for d in runtime.dead_letters()]
    leftovers = [
        m.value for k in report.kernels.values() for m in (*k.unprocessed, *k.undeliverable)
    ]
    assert sorted(delivered + dead + leftovers) == list(range(N))
    for kid in runtime.kernel_ids:
        assert runtime.get_telemetry(kid).books_balance


async def test_shutdown_while_a_stage_hangs_accounts_for_everything() -> None:
    async def hangs(ctx: KernelContext) -> None:
        await ctx.receive()
        await asyncio.sleep(3600)

    runtime = RingKernelRuntime(drain_timeout=0.2, grace_period=0.05)
    async with runtime:
        await chain(runtime, hangs, stall_timeout=0.05)
        for i in range(10):
            await runtime.send("first", Item(value=i))
        await until(lambda: runtime.get_telemetry("middle").messages_processed == 1)
    report = runtime.shutdown_report
    assert report is not None
    assert [m.value for m in report.kernels["middle"].unprocessed] == list(range(1, 10))
    assert runtime.state("middle") is KernelState.TERMINATED
