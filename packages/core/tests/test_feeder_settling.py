"""Settling a run's feeder when the reader of ``process()`` leaves."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from pydotcompute import StageFailedError
from pydotcompute.pipeline import settle_feeder


def failed(stage: str) -> StageFailedError:
    return StageFailedError(stage, stage, RuntimeError("boom"))


async def ended_with(error: BaseException) -> asyncio.Task[Any]:
    async def feed() -> None:
        raise error

    task = asyncio.get_running_loop().create_task(feed())
    while not task.done():  # waited for without reading its error
        await asyncio.sleep(0)
    return task


def told(loop: asyncio.AbstractEventLoop) -> list[dict[str, Any]]:
    contexts: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: contexts.append(context))
    return contexts


async def test_a_feeder_error_nobody_reads_is_logged_when_collected() -> None:
    """What the tests below rule out: asyncio's "never retrieved" log."""
    contexts = told(asyncio.get_running_loop())
    feeder = await ended_with(failed("b"))
    del feeder
    gc.collect()
    assert [c["message"] for c in contexts] == ["Task exception was never retrieved"]


async def test_the_runs_failure_in_the_feeder_is_not_logged_again() -> None:
    contexts = told(asyncio.get_running_loop())
    feeder = await ended_with(failed("b"))
    await settle_feeder(feeder, failed("b"))
    del feeder
    gc.collect()
    assert contexts == []


async def test_another_error_of_the_feeder_is_reported_naming_it() -> None:
    contexts = told(asyncio.get_running_loop())
    disk = OSError("disk went away")
    await settle_feeder(await ended_with(disk), failed("b"))
    gc.collect()
    assert [(c["message"], c["exception"]) for c in contexts] == [
        ("the feed of a run failed too", disk)
    ]


async def test_the_error_the_reader_leaves_with_is_not_reported_twice() -> None:
    contexts = told(asyncio.get_running_loop())
    disk = OSError("disk went away")
    await settle_feeder(await ended_with(disk), disk)
    gc.collect()
    assert contexts == []


async def test_a_feeder_still_running_is_cancelled() -> None:
    feeder = asyncio.get_running_loop().create_task(asyncio.sleep(60))
    await settle_feeder(feeder, GeneratorExit())
    assert feeder.cancelled()
