"""The echo round trip and its bare-asyncio floor, driven the same way.

Runtime: ``bench_core``'s echo kernel, the host sending with ``runtime.send`` and
receiving with ``runtime.receive``. Floor: two bare ``asyncio.Queue``\\ s and one task
that moves each message from the first to the second. One driver times both, a message
at a time, and checks afterwards that every reply is the ping it answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
from _floor_rounds import Round
from bench_core import Ping, echo
from pydotcompute import RingKernelRuntime

WARM_UP = 200


def pings(count: int) -> list[Ping]:
    return [Ping(n=i) for i in range(count)]


async def _round_trips(
    send: Callable[[Any], Awaitable[Any]], receive: Callable[[], Awaitable[Any]], sent: list[Ping]
) -> Round:
    samples = np.empty(len(sent))
    replies: list[Any] = [None] * len(sent)
    started = time.perf_counter()
    for i, ping in enumerate(sent):
        began = time.perf_counter()
        await send(ping)
        replies[i] = await receive()
        samples[i] = time.perf_counter() - began
    seconds = time.perf_counter() - started
    answered = [reply.n for reply in replies]
    if answered != [ping.n for ping in sent]:
        wrong = next(i for i, (a, p) in enumerate(zip(answered, sent, strict=True)) if a != p.n)
        raise AssertionError(f"round trip {wrong}: sent ping {wrong}, got back {answered[wrong]}")
    return Round(seconds, len(sent), float(sum(answered)), samples)


async def bare_asyncio(sent: list[Ping]) -> Round:
    """Round trips through two bare ``asyncio.Queue``\\ s and one echoing task."""
    inbox: asyncio.Queue[Ping] = asyncio.Queue()
    outbox: asyncio.Queue[Ping] = asyncio.Queue()

    async def echo_task() -> None:
        while True:
            await outbox.put(await inbox.get())

    task = asyncio.get_running_loop().create_task(echo_task())
    try:
        await _round_trips(inbox.put, outbox.get, pings(WARM_UP))
        return await _round_trips(inbox.put, outbox.get, sent)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def runtime_echo(sent: list[Ping]) -> Round:
    """Round trips to ``bench_core``'s echo kernel through a :class:`RingKernelRuntime`."""
    async with RingKernelRuntime() as runtime:
        await runtime.launch("echo", echo)
        await runtime.activate("echo")
        send = partial(runtime.send, "echo")
        receive = partial(runtime.receive, "echo")
        await _round_trips(send, receive, pings(WARM_UP))
        return await _round_trips(send, receive, sent)


def p50_us(rounds: Sequence[Round]) -> float:
    """The median round trip over every round's samples, in microseconds."""
    return float(np.median(np.concatenate([r.samples for r in rounds]))) * 1e6
