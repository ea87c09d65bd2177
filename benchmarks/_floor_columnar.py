"""The columnar contenders: ``pydotcompute run examples/guide.toml --synthetic N`` as a
subprocess, bare NumPy, and Bytewax's batched dataflow, on the same 4,096-row chunks;
bare NumPy and Bytewax both in this process and as scripts in a fresh interpreter (the
like of the command's wall time: start-up, imports and allocator included).

The CLI draws its synthetic records chunk by chunk from ``default_rng(seed)`` inside its
run, so every contender here draws the same chunks the same way inside its clock (equal
work, the same data); bare NumPy is also timed on chunks drawn beforehand, the floor of
the two operations alone. Every contender uses the same two operations: core's
:class:`NumpyBackend` ``minmax_normalize`` then ``row_mean``, one call each per chunk.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from _floor_bytewax import two_maps
from _floor_rounds import Round
from pydotcompute.backend import NumpyBackend

GUIDE_TOML = Path(__file__).resolve().parent.parent / "examples" / "guide.toml"
WIDTH = 64
CHUNK = 4096  # the CLI's default --batch
SEED = 0  # the CLI's default --seed

_backend = NumpyBackend()
normalize = _backend.minmax_normalize
row_mean = _backend.row_mean


def synthetic_chunks(records: int) -> Iterator[npt.NDArray[np.float32]]:
    """The chunks ``pydotcompute run --synthetic records`` feeds, drawn as it draws them."""
    rng = np.random.default_rng(SEED)
    for lo in range(0, records, CHUNK):
        yield rng.random((min(CHUNK, records - lo), WIDTH), dtype=np.float32)


def total_of(means: Iterable[npt.NDArray[Any]]) -> float:
    """The sum of every mean, chunk by chunk: the same value for the same means in the
    same chunks, whoever computed them."""
    return math.fsum(float(np.sum(m, dtype=np.float64)) for m in means)


def bare_numpy(chunks: Iterable[npt.NDArray[np.float32]]) -> Round:
    """The two operations on each chunk in a plain loop (drawing them if ``chunks`` does)."""
    started = time.perf_counter()
    means = [row_mean(normalize(chunk)) for chunk in chunks]
    total = total_of(means)
    return Round(time.perf_counter() - started, sum(len(m) for m in means), total)


def bytewax_batched(records: int) -> Round:
    """Bytewax's dataflow with one item per chunk, its source drawing the chunks."""
    started = time.perf_counter()
    means = two_maps(synthetic_chunks(records), normalize, row_mean)
    total = total_of(means)
    return Round(time.perf_counter() - started, sum(len(m) for m in means), total)


SCRIPT = Path(__file__).resolve().parent / "floor_script.py"


def script_round(engine: str, records: int) -> tuple[Round, Round]:
    """``python benchmarks/floor_script.py engine records`` (engine: numpy or bytewax) in a
    fresh interpreter, as a user runs a script: its round by wall time (start to exit)
    and by its own run time, both with its results' total.

    Raises:
        RuntimeError: the script did not exit 0 (its stderr is quoted).
    """
    command = [sys.executable, str(SCRIPT), engine, str(records)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}: {done.stderr}")
    own = json.loads(done.stdout)
    return (
        Round(wall, own["results"], own["total"]),
        Round(own["seconds"], own["results"], own["total"]),
    )


def cli_command(records: int, *options: str, pipeline: Path = GUIDE_TOML) -> list[str]:
    """``pydotcompute run examples/guide.toml --synthetic records --json`` (or another
    ``pipeline`` file) with the ``pydotcompute`` command of this interpreter's environment.

    Raises:
        FileNotFoundError: that environment has no ``pydotcompute`` command.
    """
    command = Path(sys.executable).with_name("pydotcompute")
    if not command.exists():
        raise FileNotFoundError(
            f"{command}: no pydotcompute command next to {sys.executable}; install "
            "packages/core and packages/stages into this environment (nox -s bench does)"
        )
    return [str(command), "run", str(pipeline), "--synthetic", str(records), "--json", *options]


def run_cli(
    records: int, *options: str, pipeline: Path = GUIDE_TOML
) -> tuple[float, dict[str, Any]]:
    """Run the CLI over ``records`` synthetic records; its wall time (start to exit) and
    its JSON report.

    Raises:
        RuntimeError: the command did not exit 0 (its stderr is quoted), or its report
            does not account for every record.
    """
    command = cli_command(records, *options, pipeline=pipeline)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited with {done.returncode}: {done.stderr.strip()}"
        )
    report: dict[str, Any] = json.loads(done.stdout)
    if report["results"] != records or report["stage_errors"] != 0:
        raise RuntimeError(
            f"{' '.join(command)}: {report['results']} results, {report['stage_errors']} "
            f"stage errors, for {records} records"
        )
    return wall, report


def cli_round(records: int) -> tuple[Round, dict[str, Any]]:
    """One timed CLI run (no output file, as issue 12 runs it): its round, by wall time,
    and its report. Its results are checked by :func:`cli_results_total`'s run."""
    wall, report = run_cli(records)
    return Round(wall, report["results"], None), report


def cli_results_total(records: int, out_dir: Path) -> tuple[float, float]:
    """Run the CLI once more, writing its results to an ``.npy`` file: the total of its
    means (as :func:`total_of` sums them, by the CLI's chunks) and that run's wall time."""
    path = out_dir / "cli_results.npy"
    wall, _ = run_cli(records, "-o", str(path))
    means = np.load(path)[:, 0]
    return total_of(means[lo : lo + CHUNK] for lo in range(0, records, CHUNK)), wall
