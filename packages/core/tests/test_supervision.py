"""Restart policies, dead letters, deadlines, the watchdog and health (issue 5)."""

from __future__ import annotations

import asyncio
import logging
import time

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


class Poison(RuntimeError):
    pass


async def poisoned_echo(ctx: KernelContext) -> None:
    """Echoes values; raises on a negative one."""
    while not ctx.should_terminate:
        try:
            msg = await ctx.receive(timeout=0.05)
        except TimeoutError:
            continue
        if msg.value < 0:
            raise Poison(f"poison {msg.value}")
        await ctx.send(msg)


FAST_RESTARTS = RestartPolicy.on_failure(max_restarts=3, window=60, backoff=0.001)


async def test_restart_keeps_the_queue_and_dead_letters_the_poison() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("k", poisoned_echo, restart=FAST_RESTARTS)
        for value in (1, -1, 2, 3):
            await rt.send("k", Item(value=value))
        await rt.activate("k")
        got = [(await rt.receive("k", timeout=2)).value for _ in range(3)]
        assert got == [1, 2, 3]
        assert rt.state("k") is KernelState.ACTIVE
        (letter,) = rt.dead_letters()
        assert (letter.kernel_id, letter.message.value, letter.reason) == (
            "k",
            -1,
            DeadLetterReason.FAILED,
        )
        assert isinstance(letter.error, Poison)
        t = rt.get_telemetry("k")
        assert (t.restarts, t.errors, t.messages_dead_lettered, t.messages_processed) == (
            1,
            1,
            1,
            3,
        )
        assert t.books_balance


async def test_past_the_limit_the_kernel_fails_for_good() -> None:
    policy = RestartPolicy.on_failure(max_restarts=2, window=60, backoff=0.001)
    async with RingKernelRuntime() as rt:
        await rt.launch("k", poisoned_echo, restart=policy)
        await rt.activate("k")
        for _ in range(3):
            await rt.send("k", Item(value=-1))
        await until(lambda: rt.state("k") is KernelState.FAILED)
        with pytest.raises(KernelFailedError, match="kernel 'k' failed"):
            await rt.send("k", Item(value=1))
        t = rt.get_telemetry("k")
        assert (t.restarts, t.errors, t.messages_dead_lettered) == (2, 3, 3)
        assert len(rt.dead_letters("k")) == 3 and t.books_balance
        health = rt.health()
        assert not health.healthy and health.kernels["k"].last_error is not None


async def test_restart_window_forgets_old_failures() -> None:
    policy = RestartPolicy.on_failure(max_restarts=1, window=0.05, backoff=0.0)
    async with RingKernelRuntime() as rt:
        await rt.launch("k", poisoned_echo, restart=policy)
        await rt.activate("k")
        await rt.send("k", Item(value=-1))
        await until(lambda: rt.get_telemetry("k").restarts == 1)
        await asyncio.sleep(0.1)  # the window slides past the first failure
        await rt.send("k", Item(value=-2))
        await until(lambda: rt.get_telemetry("k").restarts == 2)
        await until(lambda: rt.state("k") is KernelState.ACTIVE)


def test_backoff_grows_and_is_capped() -> None:
    policy = RestartPolicy.on_failure(backoff=0.1, backoff_factor=2, max_backoff=0.3)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.3, 0.3]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_restarts": -1}, "max_restarts"),
        ({"window": float("nan")}, "window"),
        ({"backoff": -1}, "backoff"),
        ({"backoff_factor": 0.5}, "backoff_factor"),
    ],
)
def test_bad_policies_are_refused(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RestartPolicy(**kwargs)  # type: ignore[arg-type]


async def test_restart_during_backoff_is_interrupted_by_shutdown() -> None:
    slow = RestartPolicy.on_failure(max_restarts=1, backoff=30.0, max_backoff=30.0)
    runtime = RingKernelRuntime()
    started = time.monotonic()
    async with runtime:
        await runtime.launch("k", poisoned_echo, restart=slow)
        await runtime.activate("k")
        await runtime.send("k", Item(value=-1))
        await until(lambda: runtime.state("k") is KernelState.RESTARTING)
        await runtime.send("k", Item(value=5))  # still accepted while it restarts
    assert time.monotonic() - started < 10  # not the 30 s backoff
    report = runtime.shutdown_report
    assert report is not None and [m.value for m in report.kernels["k"].unprocessed] == [5]


async def test_failure_in_a_batch_dead_letters_the_whole_batch() -> None:
    async def batcher(ctx: KernelContext) -> None:
        while not ctx.should_terminate:
            try:
                batch = await ctx.receive_batch(10, timeout=0.05)
            except TimeoutError:
                continue
            if any(m.value < 0 for m in batch):
                raise Poison("bad batch")
            for m in batch:
                await ctx.send(m)

    async with RingKernelRuntime() as rt:
        await rt.launch("b", batcher, restart=FAST_RESTARTS)
        for value in (1, -1, 2):
            await rt.send("b", Item(value=value))
        await rt.activate("b")
        await until(lambda: rt.get_telemetry("b").restarts == 1)
        assert [d.message.value for d in rt.dead_letters()] == [1, -1, 2]
        assert rt.get_telemetry("b").books_balance


async def test_dead_letters_can_be_replayed() -> None:
    flaky_calls = 0

    async def flaky(ctx: KernelContext) -> None:
        nonlocal flaky_calls
        while not ctx.should_terminate:
            try:
                msg = await ctx.receive(timeout=0.05)
            except TimeoutError:
                continue
            flaky_calls += 1
            if flaky_calls == 1:
                raise Poison("first time only")
            await ctx.send(msg)

    async with RingKernelRuntime() as rt:
        await rt.launch("f", flaky, restart=FAST_RESTARTS)
        await rt.activate("f")
        await rt.send("f", Item(value=9))
        await until(lambda: len(rt.dead_letters()) == 1)
        assert await rt.replay_dead_letters("f") == 1
        assert (await rt.receive("f", timeout=2)).value == 9
        assert rt.dead_letters() == []
        assert rt.get_telemetry("f").books_balance


async def test_failed_replay_puts_the_letters_back() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("k", poisoned_echo)  # no restarts: fails for good
        await rt.activate("k")
        await rt.send("k", Item(value=-1))
        await until(lambda: rt.state("k") is KernelState.FAILED)
        with pytest.raises(KernelFailedError):
            await rt.replay_dead_letters()
        assert [d.message.value for d in rt.dead_letters()] == [-1]
        await rt.launch("spare", echo_kernel)
        await rt.activate("spare")
        assert await rt.replay_dead_letters(to="spare") == 1
        assert (await rt.receive("spare", timeout=2)).value == -1


async def test_dead_letter_queue_is_bounded_and_counts_discards(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="pydotcompute")
    async with RingKernelRuntime(dead_letter_capacity=2) as rt:
        await rt.launch("k", echo_kernel)
        for i in range(4):
            await rt.send("k", Item(value=i, deadline=time.time() - 1))
        await rt.activate("k")
        await until(lambda: rt.get_telemetry("k").messages_expired == 4)
        assert [d.message.value for d in rt.dead_letters()] == [2, 3]
        assert rt.health().dead_letters_discarded == 2
    assert "dead letter queue full" in caplog.text


async def test_expired_messages_are_not_processed_but_counted_and_dead_lettered() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("k", echo_kernel)
        await rt.send("k", Item(value=1, deadline=time.time() - 0.001))
        await rt.send("k", Item(value=2, deadline=time.time() + 60))
        await rt.send("k", Item(value=3))
        await rt.activate("k")
        got = [(await rt.receive("k", timeout=2)).value for _ in range(2)]
        assert got == [2, 3]
        t = rt.get_telemetry("k")
        assert (t.messages_expired, t.messages_processed) == (1, 2) and t.books_balance
        (letter,) = rt.dead_letters()
        assert (letter.message.value, letter.reason) == (1, DeadLetterReason.EXPIRED)


async def test_batch_skips_expired_messages() -> None:
    batches: list[list[int]] = []

    async def batcher(ctx: KernelContext) -> None:
        while not ctx.should_terminate:
            try:
                batches.append([m.value for m in await ctx.receive_batch(10, timeout=0.05)])
            except TimeoutError:
                continue

    async with RingKernelRuntime() as rt:
        await rt.launch("b", batcher)
        past = time.time() - 1
        for value in range(6):
            await rt.send("b", Item(value=value, deadline=past if value % 2 else None))
        await rt.activate("b")
        await until(lambda: bool(batches))
        assert batches == [[0, 2, 4]]
        assert rt.get_telemetry("b").messages_expired == 3


async def hang_on_negative(ctx: KernelContext) -> None:
    while not ctx.should_terminate:
        try:
            msg = await ctx.receive(timeout=0.05)
        except TimeoutError:
            continue
        if msg.value < 0:
            await asyncio.sleep(3600)  # a hang the kernel never recovers from by itself
        await ctx.send(msg)


async def test_watchdog_reports_a_stalled_kernel(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="pydotcompute")
    async with RingKernelRuntime(grace_period=0.05) as rt:
        await rt.launch("h", hang_on_negative, stall_timeout=0.05)
        await rt.activate("h")
        await rt.send("h", Item(value=-1))
        await rt.send("h", Item(value=2))
        await until(lambda: rt.health().kernels["h"].stalled)
        health = rt.health()
        assert not health.healthy
        assert health.kernels["h"].stalls == 1 and health.kernels["h"].input_queue_depth == 1
        assert rt.get_telemetry("h").stalls == 1
    assert "kernel 'h' stalled" in caplog.text


async def test_watchdog_restarts_a_stalled_kernel_by_policy() -> None:
    policy = RestartPolicy.on_failure(max_restarts=3, backoff=0.0, restart_on_stall=True)
    async with RingKernelRuntime() as rt:
        await rt.launch("h", hang_on_negative, stall_timeout=0.05, restart=policy)
        await rt.activate("h")
        for value in (1, -1, 2, 3):
            await rt.send("h", Item(value=value))
        got = [(await rt.receive("h", timeout=5)).value for _ in range(3)]
        assert got == [1, 2, 3]
        (letter,) = rt.dead_letters()
        assert (letter.message.value, letter.reason) == (-1, DeadLetterReason.STALLED)
        t = rt.get_telemetry("h")
        assert (t.stalls, t.restarts, t.messages_dead_lettered) == (1, 1, 1)
        assert t.books_balance
        assert rt.health().healthy  # progress again: no longer stalled


async def test_busy_but_progressing_kernel_is_not_stalled() -> None:
    async def slow(ctx: KernelContext) -> None:
        while not ctx.should_terminate:
            try:
                msg = await ctx.receive(timeout=0.05)
            except TimeoutError:
                continue
            await asyncio.sleep(0.01)
            await ctx.send(msg)

    async with RingKernelRuntime() as rt:
        await rt.launch("s", slow, stall_timeout=0.2)
        await rt.activate("s")
        for i in range(20):
            await rt.send("s", Item(value=i))
        for _ in range(20):
            await rt.receive("s", timeout=5)
        assert rt.get_telemetry("s").stalls == 0


async def test_deactivated_kernel_with_queued_messages_is_not_stalled() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("k", echo_kernel, stall_timeout=0.01)
        await rt.send("k", Item())
        # A control that is active, has a message queued and never takes it: once the
        # watchdog has counted it stalled, it has looked at "k" too.

        async def never_takes(ctx: KernelContext) -> None:
            while not ctx.should_terminate:
                await asyncio.sleep(0.005)

        await rt.launch("control", never_takes, stall_timeout=0.01)
        await rt.activate("control")
        await rt.send("control", Item())
        await until(lambda: rt.health().kernels["control"].stalls >= 1)
        assert rt.health().kernels["k"].stalls == 0


async def test_cancelled_host_send_and_receive_leave_queues_consistent() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("k", echo_kernel, queue_size=1)
        await rt.send("k", Item(value=1))  # input full (not active yet)
        blocked_send = asyncio.create_task(rt.send("k", Item(value=2)))
        waiting_receive = asyncio.create_task(rt.receive("k"))
        await until(
            lambda: (
                rt.queue_statistics("k")[0].waiting_putters == 1
                and rt.queue_statistics("k")[1].waiting_getters == 1
            )
        )
        blocked_send.cancel()
        waiting_receive.cancel()
        await asyncio.gather(blocked_send, waiting_receive, return_exceptions=True)
        await rt.activate("k")
        assert (await rt.receive("k", timeout=2)).value == 1
        with pytest.raises(TimeoutError):
            await rt.receive("k", timeout=0.05)  # the cancelled send never landed
        t = rt.get_telemetry("k")
        assert (t.messages_received, t.messages_processed) == (1, 1) and t.books_balance


async def test_health_summarises_every_kernel() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("a", echo_kernel)
        await rt.launch("b", poisoned_echo)
        await rt.activate("a")
        await rt.activate("b")
        await rt.send("b", Item(value=-1))
        await until(lambda: rt.state("b") is KernelState.FAILED)
        health = rt.health()
        as_dict = health.to_dict()
    assert health.kernels["a"].healthy and not health.kernels["b"].healthy
    assert as_dict["healthy"] is False and as_dict["kernels"]["b"]["state"] == "failed"
    assert "Poison" in (health.kernels["b"].last_error or "")
