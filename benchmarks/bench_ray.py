"""Issue 10: the guide's pipeline with ``engine = "ray"``, side by side, in one run.

* **Columnar**, 1,000,000 records x 64 float32 in 4,096-row batches (the guide's two
  steps: min-max normalize, row mean): the Ray engine, Ray Data doing the same work
  (``from_numpy(x).map_batches(normalize).map_batches(mean)`` at batch size 4,096), and
  the local engine. Target: the Ray engine at least 1.5x Ray Data.
* **Per message** (one record per message): the Ray engine against a naive chain of two
  Ray actors called once per record. Target: at least 30x.
* **Ray Compiled Graphs** (``experimental_compile``), measured to decide whether they
  fit the stage loop: the same two steps as a compiled two-actor graph, per 4,096-row
  batch and per record, beside plain actor calls (a second test; _ray_compiled.py).
* **Start-up**, reported apart: ``ray.init`` and the Ray engine's actors coming up.

Every contender's records/s (median of its rounds) and the ratios are in the
benchmark's extra_info. The clock starts after batches are built, plugins discovered,
Ray started and actors up. PYDOTCOMPUTE_BENCH_RECORDS changes the columnar size,
PYDOTCOMPUTE_BENCH_ROUNDS the rounds. Run:

    pytest benchmarks/bench_ray.py -o python_files=bench_*.py -s
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import ray
from bench_stages_pipeline import CHUNK, RECORDS, WIDTH, _data, _discovered_plugins
from pydotcompute import Pipeline, records_from_array
from pydotcompute.backend import NumpyBackend
from pydotcompute.pipeline import RayPipelineRun, open_run
from pydotcompute.plugins import PluginManager

# Ray Data warns about its own deprecated settings when it starts.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROUNDS = int(os.environ.get("PYDOTCOMPUTE_BENCH_ROUNDS", "2"))
# Per message: records through the Ray engine, and through the naive per-record chain
# (milliseconds a record: a few hundred say enough).
PER_MESSAGE = 50_000
NAIVE = 500
_BACKEND = NumpyBackend()


def _normalize(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(_BACKEND.minmax_normalize(x))


def _mean(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(_BACKEND.row_mean(x))


def _pipeline() -> Pipeline:
    return (
        Pipeline("guide").add_stage("preprocess").add_stage("compute", params={"stats": ["mean"]})
    )


@pytest.fixture(scope="module")
def ray_started() -> Iterator[float]:
    began = time.perf_counter()
    here = os.path.dirname(os.path.abspath(__file__))  # the actors import this module
    ray.init(
        num_cpus=os.cpu_count(),
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": here}},
    )
    yield time.perf_counter() - began
    ray.shutdown()


# -- contenders ---------------------------------------------------------------------------


async def _engine(inputs: list[Any], plugins: PluginManager, engine: str) -> tuple[float, float]:
    """(seconds from the first input to the last result, actor start-up seconds); checks
    the sum of the results."""
    plan = dataclasses.replace(_pipeline().validate(plugins), engine=engine)
    run = open_run(plan, relax_gc=True)
    await run.start()
    total = 0.0
    started = time.perf_counter()
    async with run:
        async for result in run.process(inputs):
            values = result.values if hasattr(result, "values") else result.result
            total += float(np.asarray(values, dtype=np.float64).sum())
    elapsed = time.perf_counter() - started
    _sums.setdefault(len(inputs), []).append(total)
    return elapsed, run.ray_startup_s if isinstance(run, RayPipelineRun) else 0.0


_sums: dict[int, list[float]] = {}


def _ray_data(x: np.ndarray[Any, Any]) -> float:
    import ray.data

    def normalize(batch: dict[str, Any]) -> dict[str, Any]:
        return {"data": _normalize(batch["data"])}

    def mean(batch: dict[str, Any]) -> dict[str, Any]:
        return {"mean": _mean(batch["data"])}

    started = time.perf_counter()
    ds = (
        ray.data.from_numpy(x)
        .map_batches(normalize, batch_size=CHUNK)
        .map_batches(mean, batch_size=CHUNK)
    )
    total = 0.0
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        total += float(np.asarray(batch["mean"], dtype=np.float64).sum())
    elapsed = time.perf_counter() - started
    _sums.setdefault(-1, []).append(total)
    return elapsed


@ray.remote
class _Step:
    """One step of the naive chain and of the compiled graph."""

    def __init__(self, step: str) -> None:
        self.step = _normalize if step == "normalize" else _mean

    def run(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return self.step(x)


def _naive_chain(x: np.ndarray[Any, Any]) -> float:
    """Two actors, one call each per record, one record at a time."""
    first, second = _Step.remote("normalize"), _Step.remote("mean")
    ray.get([first.__ray_ready__.remote(), second.__ray_ready__.remote()])
    started = time.perf_counter()
    for row in x:
        ray.get(second.run.remote(first.run.remote(row[None, :])))
    elapsed = time.perf_counter() - started
    for actor in (first, second):
        ray.kill(actor)
    return elapsed


def _plain_calls(x: np.ndarray[Any, Any], chunk: int) -> float:
    """The same two actors called the ordinary way, one slice at a time."""
    first, second = _Step.remote("normalize"), _Step.remote("mean")
    ray.get([first.__ray_ready__.remote(), second.__ray_ready__.remote()])
    started = time.perf_counter()
    for lo in range(0, len(x), chunk):
        ray.get(second.run.remote(first.run.remote(x[lo : lo + chunk])))
    elapsed = time.perf_counter() - started
    for actor in (first, second):
        ray.kill(actor)
    return elapsed


# -- the benchmark --------------------------------------------------------------------------


def test_ray_engine_against_ray_data_and_the_local_engine(
    benchmark: Any, ray_started: float
) -> None:
    x = _data()
    batches = list(records_from_array(x, batch_size=CHUNK))
    small = x[:PER_MESSAGE]
    records = list(records_from_array(small, columnar=False))
    plugins = _discovered_plugins()
    seconds: dict[str, list[float]] = {
        "ray engine, columnar": [],
        "ray data, columnar": [],
        "local engine, columnar": [],
        "ray engine, per message": [],
        "local engine, per message": [],
    }
    startup: list[float] = []
    _ray_data(x[: CHUNK * 4])  # Ray Data's own first-use costs, outside the clock
    _sums.clear()

    def one_round() -> None:  # each contender once per round, in turn: the same noise
        elapsed, up = asyncio.run(_engine(batches, plugins, "ray"))
        seconds["ray engine, columnar"].append(elapsed)
        startup.append(up)
        seconds["ray data, columnar"].append(_ray_data(x))
        seconds["local engine, columnar"].append(asyncio.run(_engine(batches, plugins, "local"))[0])
        seconds["ray engine, per message"].append(asyncio.run(_engine(records, plugins, "ray"))[0])
        seconds["local engine, per message"].append(
            asyncio.run(_engine(records, plugins, "local"))[0]
        )

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    naive = _naive_chain(x[:NAIVE])
    plain_batch = _plain_calls(x[: CHUNK * 64], CHUNK)

    # Everyone computed the same sums of means.
    np.testing.assert_allclose(_sums[len(batches)] + _sums[-1], _sums[-1][0], rtol=1e-5)
    np.testing.assert_allclose(_sums[len(records)], _sums[len(records)][0], rtol=1e-5)
    sizes = {name: (PER_MESSAGE if "per message" in name else RECORDS) for name in seconds}
    rates = {name: sizes[name] / statistics.median(s) for name, s in seconds.items()}
    rates["naive actor chain, per record"] = NAIVE / naive
    rates["plain actor calls, 4096-row batches, one at a time"] = CHUNK * 64 / plain_batch
    ratios = {
        "ray engine / ray data (columnar)": rates["ray engine, columnar"]
        / rates["ray data, columnar"],
        "ray engine / local engine (columnar)": rates["ray engine, columnar"]
        / rates["local engine, columnar"],
        "ray engine per message / naive chain": rates["ray engine, per message"]
        / rates["naive actor chain, per record"],
    }
    benchmark.extra_info.update(
        records=RECORDS,
        per_message_records=PER_MESSAGE,
        naive_records=NAIVE,
        width=WIDTH,
        batch=CHUNK,
        rounds=ROUNDS,
        cpu_count=os.cpu_count(),
        ray_version=ray.__version__,
        ray_init_s=round(ray_started, 3),
        ray_engine_actor_startup_s=[round(s, 3) for s in startup],
        records_per_s={name: round(rate) for name, rate in rates.items()},
        ratios={name: round(r, 2) for name, r in ratios.items()},
    )
    print(f"\nray.init: {ray_started:.2f} s; the Ray engine's actors up: {startup} s")
    for name, rate in rates.items():
        print(f"{name:40} {rate:14,.0f} records/s")
    for name, ratio in ratios.items():
        print(f"{name:40} {ratio:8.2f}x")


def test_ray_compiled_graph_against_plain_actor_calls(benchmark: Any, ray_started: float) -> None:
    """Whether Compiled Graphs would pay for the stage loop: the same two steps, per
    step, both ways (see _ray_compiled.py; in a process of its own, bounded in time)."""
    address = ray.get_runtime_context().gcs_address
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ray_compiled.py")

    def probe() -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, script, address],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return figures

    figures = benchmark.pedantic(probe, rounds=1, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update(cpu_count=os.cpu_count(), **figures)
    print("\n" + json.dumps(figures, indent=1))
