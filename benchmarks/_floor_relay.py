"""The guide's host-relayed pipeline and the cost of the guide's own stage code.

Pipeline: ``guide_pipeline.run_demo(inputs, "relay")``, timed by its own clock (from the
first send to the last result; launch and shutdown are fixed costs, not per message).
Stage code: the same two kernel functions, ``preprocess_stage`` then ``compute_stage``,
each handed its messages straight from a list by :class:`DirectContext`, with no runtime
between them. The difference is what the runtime costs per message.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from typing import Any

from _floor_rounds import Round
from guide_pipeline import compute_stage, preprocess_stage, run_demo

# Messages preprocessed before compute takes them. Few, so that the intermediate
# messages alive at once (what the garbage collector walks) are no more than the
# pipeline's: handing over all 20,000 at once made the stage code up to half again as
# slow, which would flatter the runtime.
HANDOFF = 64


class DirectContext:
    """What a guide kernel needs of its context, and no more: it receives ``inputs`` in
    order, with no queue and no wait, and what it sends is kept in ``sent``. The kernel
    ends when the inputs run out."""

    is_active = True

    def __init__(self, inputs: Sequence[Any]) -> None:
        self._inputs = inputs
        self._next = 0
        self.sent: list[Any] = []

    @property
    def should_terminate(self) -> bool:
        return self._next >= len(self._inputs)

    async def receive(self, timeout: float | None = None) -> Any:
        msg = self._inputs[self._next]
        self._next += 1
        return msg

    async def send(self, msg: Any) -> None:
        self.sent.append(msg)


async def _stage_code(inputs: Sequence[Any]) -> tuple[float, list[Any]]:
    results: list[Any] = []
    started = time.perf_counter()
    for lo in range(0, len(inputs), HANDOFF):
        preprocessed = DirectContext(inputs[lo : lo + HANDOFF])
        await preprocess_stage(preprocessed)  # type: ignore[arg-type]
        computed = DirectContext(preprocessed.sent)
        await compute_stage(computed)  # type: ignore[arg-type]
        results += computed.sent
    return time.perf_counter() - started, results


def stage_code_alone(inputs: Sequence[Any]) -> Round:
    """The guide's two kernels over ``inputs``, ``HANDOFF`` messages at a time, with no
    runtime (timed, like the pipeline, from the first message in to the last result)."""
    seconds, results = asyncio.run(_stage_code(inputs))
    return Round(seconds, len(results), math.fsum(r.result for r in results))


def host_relayed(inputs: Sequence[Any]) -> Round:
    """``inputs`` through the guide's pipeline on the runtime, the host relaying."""
    run = asyncio.run(run_demo(inputs, "relay"))
    return Round(run.seconds, len(run.results), math.fsum(r.result for r in run.results))
