"""The guide's two-stage pipeline (preprocess -> compute) as ring kernels, for the core
benchmarks (``pydotcompute demo`` runs the same pipeline through the installed stages): the stage kernels are the guide's own code, run over a stream of messages.

Two ways to join the stages: ``"relay"`` (the host receives from the first stage and
sends to the second, as the guide's "Connect Pipeline" does) and ``"connect"`` (a
kernel-to-kernel route, no host hop).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID, uuid4

from pydotcompute import KernelContext, KernelTelemetry, RingKernelRuntime, message, ring_kernel

__all__ = ["ComputeResult", "DemoRun", "PreprocessedData", "RawData", "make_inputs", "run_demo"]

JoinMode = Literal["relay", "connect"]


@message
@dataclass
class RawData:
    values: list[float]
    message_id: UUID = field(default_factory=uuid4)
    priority: int = 128
    correlation_id: UUID | None = None


@message
@dataclass
class PreprocessedData:
    normalized: list[float]
    message_id: UUID = field(default_factory=uuid4)
    priority: int = 128
    correlation_id: UUID | None = None


@message
@dataclass
class ComputeResult:
    result: float
    message_id: UUID = field(default_factory=uuid4)
    priority: int = 128
    correlation_id: UUID | None = None


# The guide's kernels, registered under demo ids so they never replace a user's own
# "preprocess"/"compute"; run_demo launches them under the guide's names.
@ring_kernel(kernel_id="pydotcompute.demo.preprocess")
async def preprocess_stage(ctx: KernelContext) -> None:
    while not ctx.should_terminate:
        if not ctx.is_active:
            await ctx.wait_active()
            continue
        try:
            raw = await ctx.receive(timeout=0.1)
            min_val = min(raw.values)
            max_val = max(raw.values)
            normalized = [(v - min_val) / (max_val - min_val) for v in raw.values]
            await ctx.send(PreprocessedData(normalized=normalized, correlation_id=raw.message_id))
        except TimeoutError:
            continue


@ring_kernel(kernel_id="pydotcompute.demo.compute")
async def compute_stage(ctx: KernelContext) -> None:
    while not ctx.should_terminate:
        if not ctx.is_active:
            await ctx.wait_active()
            continue
        try:
            data = await ctx.receive(timeout=0.1)
            result = sum(data.normalized) / len(data.normalized)
            await ctx.send(ComputeResult(result=result, correlation_id=data.message_id))
        except TimeoutError:
            continue


@dataclass(frozen=True)
class DemoRun:
    """What one run of the demo pipeline did."""

    mode: JoinMode
    messages: int
    seconds: float
    results: list[ComputeResult]
    telemetry: dict[str, KernelTelemetry]

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def make_inputs(count: int, width: int = 64, seed: int = 0) -> list[RawData]:
    """``count`` RawData messages of ``width`` random floats (never a constant row)."""
    rng = random.Random(seed)
    return [RawData(values=[rng.random() for _ in range(width - 1)] + [2.0]) for _ in range(count)]


async def run_demo(inputs: Sequence[RawData], mode: JoinMode = "connect") -> DemoRun:
    """Stream ``inputs`` through preprocess -> compute, pipelined, and collect every result."""
    async with RingKernelRuntime() as runtime:
        await runtime.launch("preprocess", preprocess_stage)
        await runtime.launch("compute", compute_stage)
        await runtime.activate("preprocess")
        await runtime.activate("compute")
        if mode == "connect":
            await runtime.connect("preprocess", "compute")
        results: list[ComputeResult] = []

        async def feed() -> None:
            for raw in inputs:
                await runtime.send("preprocess", raw)

        async def relay() -> None:
            for _ in inputs:
                await runtime.send("compute", await runtime.receive("preprocess"))

        async def collect() -> None:
            for _ in inputs:
                results.append(await runtime.receive("compute"))

        started = time.perf_counter()
        tasks: list[Any] = [feed(), collect()] + ([relay()] if mode == "relay" else [])
        await asyncio.gather(*tasks)
        seconds = time.perf_counter() - started
        telemetry = runtime.get_all_telemetry()
    return DemoRun(mode, len(inputs), seconds, results, telemetry)
