"""The columnar floor as a user would run it from the shell: a fresh interpreter that
imports only what it needs (NumPy; Bytewax too for ``bytewax``), draws the same chunks
as ``pydotcompute run examples/guide.toml --synthetic N`` measures against, computes the
guide's two operations on each, and prints one JSON line:
``{"seconds": <its own run time>, "results": <means>, "total": <their sum>}``.

    python benchmarks/floor_script.py numpy 1000000
    python benchmarks/floor_script.py bytewax 1000000

The operations are the steps of core's ``NumpyBackend.minmax_normalize`` and
``row_mean`` for float32 rows (the NaN checks included), written out here so that the
script does not import pydotcompute: its start-up is NumPy's (and Bytewax's) alone. The
benchmark checks that its total equals the in-process contenders'.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

WIDTH = 64
CHUNK = 4096
SEED = 0


def chunks(records: int) -> Iterator[Any]:
    rng = np.random.default_rng(SEED)
    for lo in range(0, records, CHUNK):
        yield rng.random((min(CHUNK, records - lo), WIDTH), dtype=np.float32)


def normalize(x: Any) -> Any:
    one = np.float32(1)
    with np.errstate(all="ignore"):
        lo = np.minimum.reduce(x, axis=1)
        hi = np.maximum.reduce(x, axis=1)
        nan_rows = np.isnan(lo)
        if nan_rows.any():
            lo[nan_rows] = np.fmin.reduce(x[nan_rows], axis=1)
            hi[nan_rows] = np.fmax.reduce(x[nan_rows], axis=1)
        span = hi - lo
        good = span > 0
        out = np.subtract(x, lo[:, None])
        np.divide(out, np.where(good, span, one)[:, None], out=out)
    if not good.all():
        bad = ~good
        out[bad] = np.where(np.isnan(x[bad]), np.nan, 0).astype(x.dtype)
    return out


def row_mean(x: Any) -> Any:
    with np.errstate(all="ignore"):
        total = np.add.reduce(x, axis=1, dtype=x.dtype)
        total /= x.dtype.type(x.shape[1])
    return total


def with_numpy(records: int) -> list[Any]:
    return [row_mean(normalize(chunk)) for chunk in chunks(records)]


def with_bytewax(records: int) -> list[Any]:
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSink, TestingSource, run_main

    means: list[Any] = []
    flow = Dataflow("guide_two_maps")
    source = op.input("records", flow, TestingSource(chunks(records)))
    normalized = op.map("normalize", source, normalize)
    op.output("results", op.map("mean", normalized, row_mean), TestingSink(means))
    run_main(flow)
    return means


def main(argv: list[str]) -> int:
    engine, records = argv[0], int(argv[1])
    run = {"numpy": with_numpy, "bytewax": with_bytewax}[engine]
    started = time.perf_counter()
    means = run(records)
    total = math.fsum(float(np.sum(m, dtype=np.float64)) for m in means)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "results": sum(len(m) for m in means), "total": total}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
