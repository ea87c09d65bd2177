"""Reliability figures (issue 5): the three-stage load run under each strategy, with
time, throughput, losses and the tracemalloc peak; the peak at 100,000 and 1,000,000
messages shows whether memory stays flat."""

from __future__ import annotations

import asyncio
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from load_pipeline import STAGES, run_load
from pydotcompute import BackpressureStrategy


def _measure(count: int, strategy: BackpressureStrategy) -> dict[str, Any]:
    tracemalloc.start()
    started = time.perf_counter()
    result = asyncio.run(run_load(count, strategy, keep_delivered=False))
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t = result.telemetry
    return {
        "messages": count,
        "delivered": result.delivered_count,
        "dropped": sum(t[s].messages_dropped for s in STAGES),
        "rejected": sum(t[s].messages_rejected for s in STAGES),
        # Strictly increasing arrivals: in order, none twice. Under BLOCK, with every
        # message delivered, that makes them exactly 0 .. count-1.
        "in_order_exactly_once": result.in_order
        and (strategy is not BackpressureStrategy.BLOCK or result.delivered_count == count),
        "books_balance": all(t[s].books_balance for s in STAGES),
        "seconds_with_tracemalloc": round(seconds, 2),
        "tracemalloc_peak_mib": round(peak / 2**20, 2),
    }


@pytest.mark.parametrize("count", [100_000, 1_000_000])
@pytest.mark.parametrize("strategy", list(BackpressureStrategy), ids=lambda s: s.value)
def test_load_three_stages_queues_of_8(
    benchmark: Any, strategy: BackpressureStrategy, count: int
) -> None:
    figures = benchmark.pedantic(lambda: _measure(count, strategy), rounds=1)
    benchmark.extra_info.update(figures)
    assert figures["books_balance"] and figures["in_order_exactly_once"]
