"""preprocess and compute work row by row, so the ``threads`` setting may cut their
batches into row slices: the guide's chain gives the same results bit for bit however
many threads it uses, fused or apart, edge rows included."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydotcompute import Pipeline, records_from_array
from pydotcompute.dataflow import MIN_SLICE_ROWS
from pydotcompute_stages import STATISTICS, Compute, Preprocess
from stages_helpers import EDGE_ROWS, by_row, run


def guide(threads: int, fuse: bool = True, stats: tuple[str, ...] = ("mean",)) -> Pipeline:
    return (
        Pipeline(defaults={"threads": threads, "fuse": fuse})
        .add_stage("preprocess")
        .add_stage("compute", params={"stats": list(stats)})
    )


async def results(pipeline: Pipeline, x: np.ndarray[Any, Any], batch: int) -> Any:
    out = await run(pipeline, records_from_array(x, batch_size=batch))
    return by_row(out, len(x))


def test_both_stages_declare_their_work_row_wise() -> None:
    assert Preprocess.row_wise and Compute.row_wise


@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
async def test_cut_batches_give_the_uncut_results_bit_for_bit(fuse: bool, dtype: str) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3 * MIN_SLICE_ROWS + 5, 6)).astype(dtype)
    edges = x[:: MIN_SLICE_ROWS // 3]
    with np.errstate(over="ignore"):  # float16: the edge rows' huge values become inf
        edges[:] = np.resize(EDGE_ROWS, edges.shape)
    one = await results(guide(1, fuse, STATISTICS), x, batch=len(x))
    for threads in (2, 3, 7):
        cut = await results(guide(threads, fuse, STATISTICS), x, batch=len(x))
        assert cut.dtype == one.dtype
        np.testing.assert_array_equal(cut, one)  # NaN where NaN, every bit else


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.integers(1, 4 * MIN_SLICE_ROWS),
    width=st.integers(1, 9),
    threads=st.integers(2, 5),
    batch=st.sampled_from([MIN_SLICE_ROWS, 3 * MIN_SLICE_ROWS, 4 * MIN_SLICE_ROWS]),
    seed=st.integers(0, 2**16),
)
async def test_any_cut_gives_the_uncut_results(
    rows: int, width: int, threads: int, batch: int, seed: int
) -> None:
    x = np.random.default_rng(seed).uniform(-1e3, 1e3, size=(rows, width)).astype(np.float32)
    one = await results(guide(1), x, batch)
    cut = await results(guide(threads), x, batch)
    np.testing.assert_array_equal(cut, one)
