"""Messages, kernels and helpers shared by the core tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from pydotcompute import KernelContext, message


@message
@dataclass
class Item:
    """A small message for the core tests."""

    value: int = 0


@message
@dataclass
class Other:
    text: str = ""


async def echo_kernel(ctx: KernelContext) -> None:
    """Sends every message it receives back out, unchanged."""
    while not ctx.should_terminate:
        try:
            msg = await ctx.receive(timeout=0.05)
        except TimeoutError:
            continue
        await ctx.send(msg)


async def hold_kernel(ctx: KernelContext) -> None:
    """Takes nothing: it only waits to be told to stop."""
    while not ctx.should_terminate:
        await ctx.wait_active()
        try:
            await ctx.receive(timeout=3600)
        except TimeoutError:
            continue


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Yield to the event loop until ``condition()`` holds; fail after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.001)
