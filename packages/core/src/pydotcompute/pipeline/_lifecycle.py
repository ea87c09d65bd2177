"""A run's lifecycle: ``async with`` (start on entry, close on exit and when the start
fails), and settling the task that feeds it when its reader leaves."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ..errors import StageFailedError

__all__ = ["StartsAndCloses", "settle_feeder"]


async def settle_feeder(feeder: asyncio.Task[Any], leaving: BaseException) -> None:
    """The reader of ``process()`` is leaving with ``leaving`` (an error, or
    ``GeneratorExit``): cancel ``feeder`` if it still runs. If it ended with an error of
    its own, that error is read here, so asyncio does not log it as never retrieved: the
    run's failure (a ``StageFailedError``) because the reader is told it already; any
    other error goes to the loop's exception handler, named."""
    if not feeder.done():
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        return
    error = None if feeder.cancelled() else feeder.exception()
    if error is None or error is leaving or isinstance(error, StageFailedError):
        return
    asyncio.get_running_loop().call_exception_handler(
        {"message": "the feed of a run failed too", "exception": error, "task": feeder}
    )


class StartsAndCloses:
    """Mixed into a run that has ``start()`` and ``close()``: ``async with run`` starts
    it and always closes it, a start that failed half-way included."""

    if TYPE_CHECKING:  # what the run itself defines

        async def start(self) -> None: ...

        async def close(self) -> object: ...

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
