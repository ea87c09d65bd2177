"""The guide's pipeline, preprocess -> compute(mean), on the numpy backend (issue 3).

(e) per-message mode: one message per record, through the pipeline (also with
    ``relax_gc=True``, as the CLI runs it);
(f) columnar mode: RecordBatches of 4,096 records, through the pipeline;
(g) the bare numpy cost of the same two operations on the same data, in a tight loop
    over the same 4,096-record chunks: (f) / (g) is the pipeline's efficiency.

Records: 1,000,000 x 64 float32 (set PYDOTCOMPUTE_BENCH_RECORDS to change it). Input
messages are built, and plugins discovered, before the clock starts; the clock covers
validation, launch, feeding, every result, and shutdown. (e) also reports the rate with
message building included. Run:

    pytest benchmarks/bench_stages_pipeline.py -o python_files=bench_*.py

Each figure is in the benchmark's extra_info as records_per_s.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import numpy as np
from pydotcompute import Pipeline, records_from_array
from pydotcompute.backend import NumpyBackend
from pydotcompute.plugins import PluginManager, create_plugin_manager

RECORDS = int(os.environ.get("PYDOTCOMPUTE_BENCH_RECORDS", "1000000"))
# Rounds per figure: this machine's speed varies from run to run (a shared VM), so a
# figure is the median of several rounds; the best round is reported beside it.
ROUNDS = int(os.environ.get("PYDOTCOMPUTE_BENCH_ROUNDS", "3"))
WIDTH = 64
CHUNK = 4096

_figures: dict[str, float] = {}


def _data() -> np.ndarray[Any, Any]:
    return np.random.default_rng(0).random((RECORDS, WIDTH), dtype=np.float32)


def _pipeline() -> Pipeline:
    return (
        Pipeline("guide")
        .add_stage("preprocess")
        .add_stage("compute", inputs=["preprocess"], params={"stats": ["mean"]})
    )


async def _run(
    inputs: list[Any], plugins: PluginManager, relax_gc: bool = False
) -> tuple[float, int]:
    pipeline = _pipeline()
    records = 0
    started = time.perf_counter()
    async for result in pipeline.run(inputs, plugins=plugins, relax_gc=relax_gc):
        records += len(result) if hasattr(result, "record_ids") else 1
    return time.perf_counter() - started, records


def _rounds(benchmark: Any, fn: Any) -> Any:
    """Run ``fn`` ROUNDS times under the benchmark; returns the last round's result."""
    return benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=0)


def _record_rate(benchmark: Any, figure: str, **info: Any) -> float:
    """Record the median records/s of the rounds just run (and the best round's) as
    ``figure``, with ``info``, in the benchmark's extra_info; returns the median."""
    stats = benchmark.stats.stats
    rate = RECORDS / stats.median
    _figures[figure] = rate
    benchmark.extra_info.update(
        info,
        records=RECORDS,
        width=WIDTH,
        rounds=ROUNDS,
        records_per_s=round(rate),
        best_round_records_per_s=round(RECORDS / stats.min),
    )
    return rate


def _discovered_plugins() -> PluginManager:
    """The installed plugins, discovered now, so that the clock does not see it."""
    plugins = create_plugin_manager()
    plugins.stages()
    return plugins


def _per_message(benchmark: Any, relax_gc: bool) -> None:
    x = _data()
    built = time.perf_counter()
    inputs = list(records_from_array(x, columnar=False))
    build_s = time.perf_counter() - built
    plugins = _discovered_plugins()
    _, records = _rounds(benchmark, lambda: asyncio.run(_run(inputs, plugins, relax_gc)))
    assert records == RECORDS
    rate = _record_rate(
        benchmark,
        "e_relaxed_gc" if relax_gc else "e",
        mode="per-message",
        relax_gc=relax_gc,
        target_records_per_s=100_000,
    )
    benchmark.extra_info["records_per_s_with_message_building"] = round(
        RECORDS / (RECORDS / rate + build_s)
    )


def test_e_per_message_pipeline(benchmark: Any) -> None:
    _per_message(benchmark, relax_gc=False)


def test_e_per_message_pipeline_relaxed_gc(benchmark: Any) -> None:
    """The same with ``relax_gc=True`` (what the CLI uses): the garbage collector runs
    less often while a million short-lived messages stream through."""
    _per_message(benchmark, relax_gc=True)


def test_f_columnar_pipeline(benchmark: Any) -> None:
    x = _data()
    inputs = list(records_from_array(x, batch_size=CHUNK))
    plugins = _discovered_plugins()
    _, records = _rounds(benchmark, lambda: asyncio.run(_run(inputs, plugins)))
    assert records == RECORDS
    _record_rate(benchmark, "f", mode="columnar", batch=CHUNK, target_records_per_s=2_000_000)


def test_g_bare_numpy(benchmark: Any) -> None:
    x = _data()
    backend = NumpyBackend()

    def loop() -> None:
        for lo in range(0, RECORDS, CHUNK):
            backend.row_mean(backend.minmax_normalize(x[lo : lo + CHUNK]))

    loop()  # warm up
    _rounds(benchmark, loop)
    rate = _record_rate(benchmark, "g", mode="bare numpy, same operations and chunks", batch=CHUNK)
    if "f" in _figures:
        benchmark.extra_info["efficiency_f_over_g"] = round(_figures["f"] / rate, 3)
        benchmark.extra_info["target_efficiency"] = 0.5
