from __future__ import annotations

import json
import math

import numpy as np
import pytest
from core_helpers import Item, echo_kernel, hold_kernel
from hypothesis import given, settings
from hypothesis import strategies as st
from pydotcompute import QueueFullError, RingKernelRuntime
from pydotcompute.runtime import wait_percentiles_us


async def test_counters_report_the_real_traffic() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("e", echo_kernel)
        await rt.activate("e")
        for i in range(25):
            await rt.send("e", Item(value=i))
        for _ in range(20):
            await rt.receive("e", timeout=2)
        await rt.deactivate("e")
        t = rt.get_telemetry("e")
    assert (t.messages_received, t.messages_processed, t.messages_sent) == (25, 25, 25)
    assert t.output_queue_depth == 5 and t.input_queue_depth == 0
    assert t.errors == t.messages_dropped == t.messages_rejected == 0
    assert t.active_seconds > 0
    assert t.throughput == pytest.approx(25 / t.active_seconds)
    assert 0 <= t.queue_wait_p50_us <= t.queue_wait_p99_us
    assert t.state == "deactivated"
    assert t.books_balance


async def test_drops_and_rejections_are_counted() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("d", hold_kernel, queue_size=2, backpressure="drop_oldest")
        await rt.launch("r", hold_kernel, queue_size=2, backpressure="reject")
        for i in range(5):
            await rt.send("d", Item(value=i))
        for i in range(2):
            await rt.send("r", Item(value=i))
        for _ in range(3):
            with pytest.raises(QueueFullError):
                await rt.send("r", Item())
        d, r = rt.get_telemetry("d"), rt.get_telemetry("r")
    assert (d.messages_received, d.messages_dropped, d.input_queue_depth) == (5, 3, 2)
    assert (r.messages_received, r.messages_rejected, r.input_queue_depth) == (5, 3, 2)
    assert d.books_balance and r.books_balance


async def test_idle_kernel_has_no_wait_figures_and_zero_throughput() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("h", hold_kernel)
        t = rt.get_telemetry("h")
    assert t.throughput == 0.0 and t.active_seconds == 0.0
    assert math.isnan(t.queue_wait_p50_us)


async def test_all_telemetry_and_to_dict_are_json_ready() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("a", echo_kernel)
        await rt.launch("b", echo_kernel)
        everything = rt.get_all_telemetry()
    assert list(everything) == ["a", "b"]
    as_dict = everything["a"].to_dict()
    assert as_dict["kernel_id"] == "a" and as_dict["messages_processed"] == 0
    json.dumps({k: v.to_dict() for k, v in everything.items()})


async def test_telemetry_off_keeps_counters_but_skips_wait_samples() -> None:
    async with RingKernelRuntime(enable_telemetry=False) as rt:
        await rt.launch("e", echo_kernel)
        await rt.activate("e")
        await rt.send("e", Item())
        await rt.receive("e", timeout=2)
        t = rt.get_telemetry("e")
    assert t.messages_processed == 1
    assert math.isnan(t.queue_wait_p50_us)


async def test_a_kernel_reports_its_own_counts_as_a_copy_that_lasts_restarts() -> None:
    from pydotcompute import KernelContext, RestartPolicy

    async def counting(ctx: KernelContext) -> None:
        while not ctx.should_terminate:
            msg = await ctx.receive()
            ctx.counts["seen"] = ctx.counts.get("seen", 0) + 1
            if msg.value < 0:
                raise ValueError("negative")  # restarted by the policy
            ctx.counts["values"] = ctx.counts.get("values", 0) + msg.value
            await ctx.send(msg)

    policy = RestartPolicy.on_failure(max_restarts=3, backoff=0.0)
    async with RingKernelRuntime() as rt:
        await rt.launch("c", counting, restart=policy)
        await rt.activate("c")
        for value in (2, 3, -1, 5):
            await rt.send("c", Item(value=value))
        for _ in range(3):
            await rt.receive("c", timeout=2)
        t = rt.get_telemetry("c")
        assert t.counts == {"seen": 4, "values": 10} and t.restarts == 1
        t.counts["seen"] = 0  # type: ignore[index]  # a snapshot: the kernel's own stay
        assert rt.get_telemetry("c").counts["seen"] == 4
    assert json.loads(json.dumps(t.to_dict()))["counts"] == {"seen": 0, "values": 10}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=10.0, allow_nan=False, width=64), min_size=1))
def test_wait_percentiles_are_numpys_linear_percentiles(samples: list[float]) -> None:
    p50, p99 = wait_percentiles_us(samples)
    expected = np.percentile(np.asarray(samples), [50, 99]) * 1e6
    assert (p50, p99) == pytest.approx(tuple(expected), rel=1e-12, abs=1e-9)
    assert all(math.isnan(p) for p in wait_percentiles_us([]))  # no samples
