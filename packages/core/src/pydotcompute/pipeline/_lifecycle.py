"""``async with`` for a run: start on entry, close on exit (and when the start fails)."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Self

__all__ = ["StartsAndCloses"]


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
