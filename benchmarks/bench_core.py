"""Core runtime figures (issue 2): echo round trip, pipelined echo, and the guide's
two-stage pipeline, host-relayed and joined with connect.

Run: `nox -s bench -- -k bench_core` (or pytest benchmarks/bench_core.py -o
python_files=bench_*.py). Each figure lands in the benchmark's extra_info.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from guide_pipeline import make_inputs, run_demo
from pydotcompute import KernelContext, RingKernelRuntime, message

ROUNDS = 3  # this machine's speed varies between runs: figures are medians of rounds
ROUND_TRIPS = 5_000
PIPELINED = 50_000
PIPELINE_MESSAGES = 20_000


@message
@dataclass
class Ping:
    n: int = 0


async def echo(ctx: KernelContext) -> None:
    """One kernel that replies: what it receives, it sends back."""
    while not ctx.should_terminate:
        try:
            msg = await ctx.receive(timeout=0.1)
        except TimeoutError:
            continue
        await ctx.send(msg)


async def _round_trips(n: int) -> np.ndarray[Any, Any]:
    async with RingKernelRuntime() as rt:
        await rt.launch("echo", echo)
        await rt.activate("echo")
        ping = Ping()
        for _ in range(200):  # warm up
            await rt.send("echo", ping)
            await rt.receive("echo")
        samples = np.empty(n)
        for i in range(n):
            started = time.perf_counter()
            await rt.send("echo", ping)
            await rt.receive("echo")
            samples[i] = time.perf_counter() - started
    return samples


async def _pipelined_echo(n: int) -> float:
    async with RingKernelRuntime() as rt:
        await rt.launch("echo", echo)
        await rt.activate("echo")
        pings = [Ping(n=i) for i in range(n)]

        async def send_all() -> None:
            for ping in pings:
                await rt.send("echo", ping)

        async def receive_all() -> None:
            for _ in pings:
                await rt.receive("echo")

        started = time.perf_counter()
        await asyncio.gather(send_all(), receive_all())
        return n / (time.perf_counter() - started)


def _each_round(benchmark: Any, fn: Any) -> list[Any]:
    """Run ``fn`` for ROUNDS rounds under the benchmark; every round's result."""
    results: list[Any] = []
    benchmark.pedantic(lambda: results.append(fn()), rounds=ROUNDS)
    return results


def _report_rate(benchmark: Any, rates: list[float]) -> None:
    benchmark.extra_info.update(
        messages_per_s=round(float(np.median(rates))),
        rounds_messages_per_s=[round(r) for r in rates],
    )


def test_a_echo_round_trip(benchmark: Any) -> None:
    rounds = _each_round(benchmark, lambda: asyncio.run(_round_trips(ROUND_TRIPS)))
    p50, p99 = np.percentile(np.concatenate(rounds), [50, 99]) * 1e6
    benchmark.extra_info.update(p50_us=round(p50, 1), p99_us=round(p99, 1))


def test_b_pipelined_echo(benchmark: Any) -> None:
    _report_rate(benchmark, _each_round(benchmark, lambda: asyncio.run(_pipelined_echo(PIPELINED))))


def _pipeline(mode: str) -> float:
    inputs = make_inputs(PIPELINE_MESSAGES, width=64)
    run = asyncio.run(run_demo(inputs, mode))  # type: ignore[arg-type]
    assert len(run.results) == PIPELINE_MESSAGES
    return run.messages_per_second


def test_c_guide_pipeline_host_relayed(benchmark: Any) -> None:
    _report_rate(benchmark, _each_round(benchmark, lambda: _pipeline("relay")))


def test_d_guide_pipeline_connected(benchmark: Any) -> None:
    _report_rate(benchmark, _each_round(benchmark, lambda: _pipeline("connect")))


def test_d_guide_stage_code_alone(benchmark: Any) -> None:
    """The guide's per-message Python (normalize, mean, two message constructions) with
    no runtime at all: the floor that (c) and (d) are compared with."""
    from guide_pipeline import ComputeResult, PreprocessedData

    inputs = make_inputs(PIPELINE_MESSAGES, width=64)

    def stage_code_only() -> float:
        started = time.perf_counter()
        for raw in inputs:
            lo, hi = min(raw.values), max(raw.values)
            pre = PreprocessedData(
                normalized=[(v - lo) / (hi - lo) for v in raw.values], correlation_id=raw.message_id
            )
            ComputeResult(
                result=sum(pre.normalized) / len(pre.normalized), correlation_id=pre.message_id
            )
        return PIPELINE_MESSAGES / (time.perf_counter() - started)

    _report_rate(benchmark, _each_round(benchmark, stage_code_only))
