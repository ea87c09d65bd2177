"""Side-by-side rounds for the floor benchmarks (issue 12).

Every contender of a comparison runs once per round, in the same order, so a slow
stretch of this shared machine slows them all alike; a figure is the median of its
rounds. The library's contender runs under pytest-benchmark's clock (its row in the
saved run), the others in the round's setup. Each contender also times itself, over the
same span for all (from the same input to the same total), and hands back what it
computed, so a contender that did less work fails the comparison instead of winning it.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Round:
    """One contender's round: how long it took and what it computed."""

    seconds: float
    records: int  #: results produced (records, messages or round trips)
    #: The sum of the results (None: this round's results are checked elsewhere).
    total: float | None
    #: Per-item times in seconds, for latency figures (None: only ``seconds`` counts).
    samples: Any = None


Contender = Callable[[], Round]


def side_by_side(
    benchmark: Any, library: tuple[str, Contender], others: dict[str, Contender], rounds: int
) -> dict[str, list[Round]]:
    """Run ``others`` then ``library`` once per round for ``rounds`` rounds; every
    contender's rounds by name. Only ``library`` is under pytest-benchmark's clock."""
    name, run_library = library
    results: dict[str, list[Round]] = {other: [] for other in others}
    results[name] = []

    # Each contender starts from a collected heap: what one left behind is not another's
    # garbage collection, landing unevenly in the timed windows.
    def setup() -> None:
        for other, run in others.items():
            gc.collect()
            results[other].append(run())
        gc.collect()

    def timed() -> None:
        results[name].append(run_library())

    benchmark.pedantic(timed, setup=setup, rounds=rounds, iterations=1, warmup_rounds=0)
    return results


def median_seconds(rounds: Sequence[Round]) -> float:
    return float(np.median([r.seconds for r in rounds]))


def check_same_results(results: dict[str, list[Round]], rel: float) -> None:
    """Every round of every contender produced as many results, with totals within
    ``rel`` of each other.

    Raises:
        AssertionError: naming the contender and round that disagree, and by how much.
    """
    rounds = [(name, i, r) for name, rs in results.items() for i, r in enumerate(rs)]
    first_name, _, first = rounds[0]
    reference = next((r for _, _, r in rounds if r.total is not None), None)
    for name, i, r in rounds:
        assert r.records == first.records, (
            f"{name} round {i} produced {r.records} results, {first_name} {first.records}"
        )
        if reference is None or r.total is None or reference.total is None:
            continue
        assert math.isclose(r.total, reference.total, rel_tol=rel), (
            f"{name} round {i} computed a total of {r.total!r}, other contenders "
            f"{reference.total!r} (relative difference "
            f"{abs(r.total - reference.total) / abs(reference.total):.2e}, allowed {rel:g})"
        )


def contender_info(
    rounds: Sequence[Round], unit: str | None = None, per_round: int = 0
) -> dict[str, Any]:
    """What extra_info says of one contender: median and every round's seconds, and (with
    ``unit``) its rate in ``unit``/s at the median, ``per_round`` units a round."""
    median = median_seconds(rounds)
    info: dict[str, Any] = {
        "median_s": round(median, 6),
        "rounds_s": [round(r.seconds, 6) for r in rounds],
    }
    if unit is not None:
        info[f"{unit}_per_s"] = round(per_round / median)
    return info
