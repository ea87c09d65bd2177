"""Issue 12, item 5: does a stage's array work on more than one core pay? The guide's
pipeline, columnar, in process (no CLI), side by side:

* ``threads``: each 4,096-row batch cut into row slices worked on at once (auto: one per
  core) against ``threads = 1``, stages fused (the default) and apart;
* ``offload``: the whole batch's work handed to one worker thread (auto), and two workers;
* bare NumPy doing the same operations on the same 4,096-row chunks, on one core;
* the command, ``pydotcompute run examples/guide.toml --synthetic 1000000``, with
  threads auto and with ``threads = 1``.

Records: 1,000,000 x 64 float32 (PYDOTCOMPUTE_BENCH_RECORDS changes it); batches are built
and plugins discovered before the clock starts. Each contender's figure (median of its
rounds, records/s) and its ratio to bare NumPy are in the benchmark's extra_info, and
``os.cpu_count()`` says how many cores the machine had. Run:

    pytest benchmarks/bench_cores.py -o python_files=bench_*.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from _floor_columnar import GUIDE_TOML, run_cli
from bench_stages_pipeline import CHUNK, RECORDS, ROUNDS, WIDTH, _data, _discovered_plugins
from pydotcompute import Pipeline, records_from_array
from pydotcompute.backend import NumpyBackend
from pydotcompute.plugins import PluginManager

CLI_RECORDS = 1_000_000
CONTENDERS = {
    "threads auto (the default)": {},
    "threads 1": {"threads": 1},
    "threads auto, not fused": {"fuse": False},
    "threads 1, not fused": {"threads": 1, "fuse": False},
    "threads auto, 2 workers": {"workers": 2},
    "threads 1, offload auto": {"threads": 1, "offload": "auto"},
    "threads 1, offload auto, 2 workers": {"threads": 1, "offload": "auto", "workers": 2},
}


async def _run(inputs: list[Any], plugins: PluginManager, defaults: dict[str, Any]) -> float:
    pipeline = (
        Pipeline("guide", defaults=defaults)
        .add_stage("preprocess")
        .add_stage("compute", params={"stats": ["mean"]})
    )
    total = 0.0
    started = time.perf_counter()
    async for result in pipeline.run(inputs, plugins=plugins):
        total += float(np.asarray(result.values, dtype=np.float64).sum())
    elapsed = time.perf_counter() - started
    _sums.append(total)
    return elapsed


_sums: list[float] = []


def _bare(x: np.ndarray[Any, Any]) -> float:
    backend = NumpyBackend()
    started = time.perf_counter()
    total = 0.0
    for lo in range(0, RECORDS, CHUNK):
        total += float(backend.row_mean(backend.minmax_normalize(x[lo : lo + CHUNK])).sum())
    elapsed = time.perf_counter() - started
    _sums.append(total)
    return elapsed


def test_cores_offload_workers_and_fusion(benchmark: Any) -> None:
    x = _data()
    inputs = list(records_from_array(x, batch_size=CHUNK))
    plugins = _discovered_plugins()
    seconds: dict[str, list[float]] = {name: [] for name in (*CONTENDERS, "bare numpy")}
    _bare(x)  # warm up

    def one_round() -> None:  # each contender once per round, in turn: same noise for all
        for name, defaults in CONTENDERS.items():
            seconds[name].append(asyncio.run(_run(inputs, plugins, defaults)))
        seconds["bare numpy"].append(_bare(x))

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    # Every contender computed the same thing (sums of the means agree).
    np.testing.assert_allclose(_sums, _sums[0], rtol=1e-5)
    rates = {name: RECORDS / statistics.median(s) for name, s in seconds.items()}
    floor = rates["bare numpy"]
    benchmark.extra_info.update(
        records=RECORDS,
        width=WIDTH,
        batch=CHUNK,
        rounds=ROUNDS,
        cpu_count=os.cpu_count(),
        records_per_s={name: round(rate) for name, rate in rates.items()},
        ratio_to_bare_numpy={name: round(rate / floor, 3) for name, rate in rates.items()},
    )
    for name, rate in rates.items():
        print(f"{name:36} {rate / 1e6:6.2f} M records/s  {rate / floor:5.2f}x bare NumPy")


def test_cores_through_the_cli(benchmark: Any, tmp_path: Path) -> None:
    """``pydotcompute run --synthetic 1000000`` on the guide's pipeline with threads auto
    (the default) and with ``threads = 1``, side by side, by the report's own run time:
    the command draws each batch on the loop's thread between batches."""
    one_thread = tmp_path / "guide_one_thread.toml"
    one_thread.write_text(
        GUIDE_TOML.read_text().replace('name = "guide"', 'name = "guide"\nthreads = 1', 1)
    )
    files = {"threads auto (the default)": GUIDE_TOML, "threads 1": one_thread}
    seconds: dict[str, list[float]] = {name: [] for name in files}

    def one_round() -> None:
        for name, path in files.items():
            _, cli_report = run_cli(CLI_RECORDS, pipeline=path)
            seconds[name].append(cli_report["seconds"])

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    rates = {name: CLI_RECORDS / statistics.median(s) for name, s in seconds.items()}
    benchmark.extra_info.update(
        records=CLI_RECORDS,
        rounds=ROUNDS,
        cpu_count=os.cpu_count(),
        records_per_s={name: round(rate) for name, rate in rates.items()},
    )
    for name, rate in rates.items():
        print(f"CLI, {name:30} {rate / 1e6:6.2f} M records/s (its report's run time)")
