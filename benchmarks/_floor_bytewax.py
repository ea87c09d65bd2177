"""The external comparison: the guide's two steps as a Bytewax dataflow of two ``map``s.

Run in this process with ``bytewax.testing.run_main`` (one worker, as the pipeline's
stages run on one event loop), its input from a ``TestingSource`` and its results
collected by a ``TestingSink``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main


def two_maps(
    items: Iterable[Any],
    normalize: Callable[[Any], Any],
    mean: Callable[[Any], Any],
    *,
    source_batch: int = 1,
) -> list[Any]:
    """Run ``items`` through ``map(normalize)`` then ``map(mean)``; every result, in
    order. ``source_batch``: how many items the source hands the dataflow at a time
    (each item still goes through both maps on its own)."""
    results: list[Any] = []
    flow = Dataflow("guide_two_maps")
    records = op.input("records", flow, TestingSource(items, batch_size=source_batch))
    normalized = op.map("normalize", records, normalize)
    op.output("results", op.map("mean", normalized, mean), TestingSink(results))
    run_main(flow)
    return results
