"""Kernels that would hang the program: one that ignores cancellation is let go of, one
that blocks the event loop is named by the watchdog thread, and a runtime whose loop has
closed says so instead of calling its kernels failed."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from core_helpers import Item, echo_kernel
from pydotcompute import (
    KernelContext,
    KernelState,
    KernelStateError,
    RingKernelRuntime,
)
from pydotcompute.errors import InvalidArgumentError

WATCHDOG_THREAD = "pydotcompute-loop-watchdog"


class _SetOnMessage(logging.Handler):
    """Sets an event when a record containing ``text`` is logged (from any thread)."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.WARNING)
        self.text = text
        self.seen = threading.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.messages.append(message)
        if self.text in message:
            self.seen.set()


LogWatch = Callable[[str], _SetOnMessage]


@pytest.fixture
def pydotcompute_log() -> Iterator[LogWatch]:
    logger = logging.getLogger("pydotcompute")
    handlers: list[logging.Handler] = []

    def attach(text: str) -> _SetOnMessage:
        handler = _SetOnMessage(text)
        logger.addHandler(handler)
        handlers.append(handler)
        return handler

    yield attach
    for handler in handlers:
        logger.removeHandler(handler)


def _watchdog_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == WATCHDOG_THREAD}


async def test_kernel_that_blocks_the_loop_is_named_with_its_stack(
    pydotcompute_log: LogWatch,
) -> None:
    log = pydotcompute_log("is running without awaiting")

    async def hog(ctx: KernelContext) -> None:
        while not ctx.should_terminate:
            try:
                await ctx.receive(timeout=0.05)
            except TimeoutError:
                continue
            # CPU-bound work on the loop's thread: nothing else runs until it ends, which
            # is when the watchdog has spoken (or after 30 s, and the test fails).
            log.seen.wait(30.0)

    runtime = RingKernelRuntime(loop_block_threshold=0.2)
    async with runtime:
        await runtime.launch("hog", hog)
        await runtime.activate("hog")
        await runtime.send("hog", Item(value=1))
        while not log.seen.is_set():
            await asyncio.sleep(0.01)
        (warning,) = [m for m in log.messages if log.text in m]
        assert "kernel 'hog' is running without awaiting" in warning
        assert "asyncio.to_thread" in warning  # where CPU-bound Python belongs
        assert "in hog\n    log.seen.wait(30.0)" in warning  # its stack, at the blocking line
        # Once the loop runs again, the watchdog says so, naming the same kernel.
        deadline = time.monotonic() + 30.0
        while not any("runs again: kernel 'hog'" in m for m in log.messages):
            assert time.monotonic() < deadline, log.messages
            await asyncio.sleep(0.01)


async def test_a_task_that_blocks_the_loop_is_named_by_its_task_name(
    pydotcompute_log: LogWatch,
) -> None:
    log = pydotcompute_log("is running without awaiting")
    runtime = RingKernelRuntime(loop_block_threshold=0.2)
    async with runtime:
        await runtime.launch("e", echo_kernel)

        async def busy() -> None:
            log.seen.wait(30.0)

        await asyncio.create_task(busy(), name="my-busy-task")
        assert log.seen.is_set()
        assert any("task 'my-busy-task' is running without awaiting" in m for m in log.messages)


async def test_the_watchdog_thread_lives_from_first_launch_to_shutdown() -> None:
    before = _watchdog_threads()
    runtime = RingKernelRuntime(loop_block_threshold=0.5)
    async with runtime:
        await runtime.launch("e", echo_kernel)
        started = _watchdog_threads() - before
        assert len(started) == 1
    assert not any(t.is_alive() for t in started)


async def test_no_watchdog_thread_when_turned_off() -> None:
    before = _watchdog_threads()
    async with RingKernelRuntime(loop_block_threshold=None) as runtime:
        await runtime.launch("e", echo_kernel)
        assert not (_watchdog_threads() - before)


@pytest.mark.parametrize("threshold", [0, -1.0, float("nan"), float("inf"), "5"])
def test_a_bad_loop_block_threshold_is_refused(threshold: object) -> None:
    with pytest.raises(InvalidArgumentError, match="loop_block_threshold"):
        RingKernelRuntime(loop_block_threshold=threshold)  # type: ignore[arg-type]


async def test_kernel_ignoring_termination_around_receive_is_let_go(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def deaf(ctx: KernelContext) -> None:
        while True:  # never looks at ctx.should_terminate
            try:
                await ctx.receive(timeout=0.05)
            except BaseException:  # the guide's bare except:, without the loop's check
                continue

    unraisable: list[str] = []  # closing it, it swallows GeneratorExit once more
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(f"{u.object!r}"))
    caplog.set_level(logging.ERROR, logger="pydotcompute")
    runtime = RingKernelRuntime(grace_period=0.01)
    async with runtime:
        await runtime.launch("deaf", deaf)
        await runtime.activate("deaf")
    report = runtime.shutdown_report
    assert report is not None and report.kernels["deaf"].stuck
    assert "kernel 'deaf' ignored termination" in caplog.text
    assert "cannot block exit" in caplog.text
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "ring-kernel:deaf"]
    assert any("deaf" in obj for obj in unraisable)


def test_runtime_reused_after_its_loop_closed_names_the_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="pydotcompute")
    runtime = RingKernelRuntime(loop_block_threshold=None)

    async def first() -> None:
        await runtime.launch("e", echo_kernel)
        await runtime.activate("e")
        # returns without runtime.shutdown(): asyncio.run cancels the kernel's task

    asyncio.run(first())
    assert runtime.state("e") is KernelState.FAILED
    assert "kernel 'e' failed" not in caplog.text
    assert "kernel 'e' was cancelled by something other than its runtime" in caplog.text
    assert "before runtime.shutdown() was awaited" in caplog.text

    async def second() -> None:
        closed = "the event loop it ran in is closed"
        with pytest.raises(KernelStateError, match=closed):
            await runtime.send("e", Item(value=1))
        with pytest.raises(KernelStateError, match=closed):
            await runtime.receive("e", timeout=1.0)
        with pytest.raises(KernelStateError, match="create a new RingKernelRuntime"):
            await runtime.launch("f", echo_kernel)
        report = await runtime.shutdown()
        assert report.kernels["e"].state == KernelState.FAILED.value

    asyncio.run(second())
