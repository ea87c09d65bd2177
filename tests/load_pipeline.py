"""A three-stage relay pipeline for load tests and benchmarks: the host feeds stage a,
a -> b -> c are joined with routes, the host collects from c."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pydotcompute import (
    BackpressureStrategy,
    KernelContext,
    QueueFullError,
    RingKernelRuntime,
    message,
)

STAGES = ("a", "b", "c")


@message
@dataclass
class Seq:
    n: int = 0


async def relay(ctx: KernelContext) -> None:
    """Passes every message on. A REJECT refusal downstream is the caller's to count:
    the destination's telemetry records it, so the books still balance."""
    while not ctx.should_terminate:
        try:
            msgs = await ctx.receive_batch(64, timeout=0.05)
        except TimeoutError:
            continue
        for msg in msgs:
            try:
                await ctx.send(msg)
            except QueueFullError:
                continue


@dataclass
class LoadResult:
    sent: int  #: offered by the host to stage a
    host_rejected: int  #: refused at stage a (REJECT)
    delivered: list[int]  #: sequence numbers that reached the host, in arrival order
    delivered_count: int  #: how many reached the host (kept even when ``delivered`` is not)
    in_order: bool  #: each arrival's number was above the one before (so none twice)
    telemetry: dict[str, Any]
    report: Any


async def run_load(
    count: int, strategy: BackpressureStrategy, queue_size: int = 8, keep_delivered: bool = True
) -> LoadResult:
    """Feed ``count`` numbered messages through a -> b -> c. ``keep_delivered=False``
    checks order and counts arrivals without keeping them, so that a memory
    measurement sees the pipeline's memory, not a list of a million numbers."""
    runtime = RingKernelRuntime()
    delivered: list[int] = []
    delivered_count = 0
    last = -1
    in_order = True
    host_rejected = 0
    async with runtime:
        for stage in STAGES:
            await runtime.launch(stage, relay, queue_size=queue_size, backpressure=strategy)
            await runtime.activate(stage)
        await runtime.connect("a", "b")
        await runtime.connect("b", "c")
        feeding_done = asyncio.Event()

        async def feed() -> None:
            nonlocal host_rejected
            for n in range(count):
                try:
                    await runtime.send("a", Seq(n=n))
                except QueueFullError:
                    host_rejected += 1
                if n % 256 == 0:
                    await asyncio.sleep(0)  # let the pipeline run even if nothing blocks
            feeding_done.set()

        async def collect() -> None:
            nonlocal delivered_count, last, in_order
            while True:
                try:
                    n = (await runtime.receive("c", timeout=0.2)).n
                except TimeoutError:
                    if feeding_done.is_set() and all(runtime.idle(s) for s in STAGES):
                        return
                    continue
                in_order = in_order and n > last
                last = n
                delivered_count += 1
                if keep_delivered:
                    delivered.append(n)

        await asyncio.gather(feed(), collect())
        telemetry = runtime.get_all_telemetry()
    return LoadResult(
        count,
        host_rejected,
        delivered,
        delivered_count,
        in_order,
        telemetry,
        runtime.shutdown_report,
    )
