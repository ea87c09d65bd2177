"""What serving Prometheus metrics costs a run (issue 13, item 3): the guide's pipeline
with and without ``metrics_port``, per message and columnar, and the time one scrape
takes (the snapshot on the run's loop plus the exposition, over loopback).

Run: `nox -s bench -- -k bench_metrics` (or pytest benchmarks/bench_metrics.py -o
python_files=bench_*.py). Figures land in each benchmark's extra_info.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from typing import Any

import numpy as np
import pytest
from pydotcompute import Pipeline, records_from_array

ROUNDS = 3  # the machine's speed varies between runs: figures are medians of rounds
PER_MESSAGE = 20_000
COLUMNAR = 1_000_000
SCRAPES = 50

GUIDE = (
    Pipeline("guide")
    .add_stage("preprocess")
    .add_stage("compute", params={"stats": ["mean"]}, fuse=False)  # two workers, two queues
)


def _inputs(columnar: bool) -> list[Any]:
    n = COLUMNAR if columnar else PER_MESSAGE
    values = np.random.default_rng(0).random((n, 64), dtype=np.float32)
    return list(records_from_array(values, columnar=columnar, batch_size=4096))


async def _run(inputs: list[Any], port: int | None) -> float:
    """Records per second of one run over ``inputs``."""
    async with GUIDE.open(metrics_port=port, relax_gc=True) as run:
        started = time.perf_counter()
        async for _ in run.process(inputs):
            pass
        seconds = time.perf_counter() - started
    return run.records_fed / seconds


@pytest.mark.parametrize("mode", ["per-message", "columnar"])
@pytest.mark.parametrize("metrics", ["off", "on"])
def test_a_run_with_and_without_metrics(benchmark: Any, mode: str, metrics: str) -> None:
    inputs = _inputs(mode == "columnar")
    port = 0 if metrics == "on" else None
    rates: list[float] = []
    benchmark.pedantic(lambda: rates.append(asyncio.run(_run(inputs, port))), rounds=ROUNDS)
    benchmark.extra_info.update(
        records_per_s_median=round(float(np.median(rates))), records_per_s=[round(r) for r in rates]
    )


async def _scrapes() -> list[float]:
    inputs = _inputs(columnar=True)[:16]
    async with GUIDE.open(metrics_port=0) as run:
        url = run.metrics_url
        assert url is not None
        async for _ in run.process(inputs):
            pass

        def scrape() -> float:
            started = time.perf_counter()
            with urllib.request.urlopen(url, timeout=30) as response:
                response.read()
            return time.perf_counter() - started

        return [await asyncio.to_thread(scrape) for _ in range(SCRAPES)]


def test_b_one_scrape(benchmark: Any) -> None:
    samples: list[float] = []
    benchmark.pedantic(lambda: samples.extend(asyncio.run(_scrapes())), rounds=1)
    p50, p99 = np.percentile(samples, [50, 99]) * 1e3
    benchmark.extra_info.update(
        scrape_p50_ms=round(float(p50), 2), scrape_p99_ms=round(float(p99), 2)
    )
