"""compute: per-record statistics against plain numpy references."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydotcompute import Pipeline, Record, RecordBatch, records_from_array
from pydotcompute.errors import ParameterValueError
from pydotcompute_stages import STATISTICS, ComputeResult
from stages_helpers import EDGE_ROWS, by_id, by_row, plugins, run

ALL = list(STATISTICS)


def reference(x: np.ndarray, stat: str) -> np.ndarray:
    """float64 numpy, NaN propagating; std/var population; width 0: NaN (sum 0)."""
    x64 = x.astype(np.float64)
    with np.errstate(all="ignore"):
        if x.shape[1] == 0:
            return np.zeros(len(x)) if stat == "sum" else np.full(len(x), np.nan)
        return {
            "mean": lambda: x64.mean(axis=1),
            "std": lambda: x64.std(axis=1),
            "var": lambda: x64.var(axis=1),
            "min": lambda: x64.min(axis=1),
            "max": lambda: x64.max(axis=1),
            "sum": lambda: x64.sum(axis=1),
            "range": lambda: x64.max(axis=1) - x64.min(axis=1),
        }[stat]()


def data(n: int = 200, width: int = 33) -> np.ndarray:
    rng = np.random.default_rng(2)
    x = rng.uniform(-10, 10, size=(n, width)).astype(np.float32)
    x[::9] = 1.5
    x[3, 4] = np.nan
    return x


def check(got: np.ndarray, x: np.ndarray, stats: list[str]) -> None:
    for column, stat in enumerate(stats):
        expected = reference(x, stat)
        exact = stat in ("min", "max")
        np.testing.assert_allclose(
            got[:, column],
            expected,
            rtol=0 if exact else 2e-5,
            atol=0 if exact else 2e-5,
            equal_nan=True,
            err_msg=stat,
        )


def pipeline(stats: list[str] | None = None, **settings: Any) -> Pipeline:
    params = {} if stats is None else {"stats": stats}
    return Pipeline().add_stage("compute", params=params, **settings)


async def test_per_message_every_statistic_equals_the_reference() -> None:
    x = data()
    inputs = list(records_from_array(x, columnar=False))
    got = by_id(await run(pipeline(ALL, batch_size=13), inputs))
    table = np.array([[got[r.message_id].stats[s] for s in ALL] for r in inputs])
    check(table, x, ALL)
    first = got[inputs[0].message_id]
    assert type(first) is ComputeResult and list(first.stats) == ALL
    assert first.result == first.stats["mean"]


async def test_columnar_every_statistic_equals_the_reference() -> None:
    x = data()
    results = await run(pipeline(ALL), records_from_array(x, batch_size=64))
    assert all(type(r) is RecordBatch and r.columns == tuple(ALL) for r in results)
    check(by_row(results, len(x)), x, ALL)


async def test_the_default_is_the_guides_mean() -> None:
    inputs = [Record(values=[1, 2, 3, 4, 5]), Record(values=[0.0, 0.25, 0.5, 0.75, 1.0])]
    got = by_id(await run(pipeline(), inputs))
    assert got[inputs[0].message_id].result == 3.0
    assert got[inputs[0].message_id].stats == {"mean": 3.0}
    assert got[inputs[1].message_id].result == 0.5


async def test_the_order_asked_for_is_the_order_out() -> None:
    inputs = [Record(values=[2.0, 4.0])]
    (out,) = await run(pipeline(["max", "sum", "min"]), inputs)
    assert out.result == 4.0 and list(out.stats.items()) == [
        ("max", 4.0),
        ("sum", 6.0),
        ("min", 2.0),
    ]


async def test_edge_rows_nan_inf_constant() -> None:
    x = EDGE_ROWS[:6]  # the float32-extreme rows are checked below
    results = await run(pipeline(ALL), records_from_array(x, batch_size=3))
    check(by_row(results, len(x)), x, ALL)


async def test_statistics_are_float32_arithmetic() -> None:
    """Accumulation is float32 (the backend policy): squares of 3e38 overflow to inf and
    squares of 1e-30 underflow to 0, where a float64 reference would not."""
    x = np.array([[3e38, 3e38], [1e-30, -1e-30]], dtype=np.float32)
    (out,) = await run(pipeline(["sum", "std"]), records_from_array(x))
    assert out.values.dtype == np.float32
    assert out.values[0, 0] == np.inf  # 3e38 + 3e38
    assert out.values[1, 1] == 0.0  # sqrt of underflowed squares


async def test_width_zero_records() -> None:
    x = np.zeros((3, 0), dtype=np.float32)
    results = await run(pipeline(ALL), records_from_array(x))
    check(by_row(results, 3), x, ALL)


async def test_it_reads_the_output_of_preprocess_and_keeps_the_root_id() -> None:
    x = data(50, 8)
    inputs = list(records_from_array(x, columnar=False))
    results = await run(Pipeline().add_stage("preprocess").add_stage("compute"), inputs)
    got = by_id(results)
    lo, hi = np.nanmin(x, axis=1, keepdims=True), np.nanmax(x, axis=1, keepdims=True)
    with np.errstate(all="ignore"):
        normalized = np.where(hi - lo > 0, (x - lo) / (hi - lo), np.where(np.isnan(x), np.nan, 0))
    for record, want in zip(inputs, normalized.astype(np.float32).mean(axis=1), strict=True):
        np.testing.assert_allclose(got[record.message_id].result, want, rtol=1e-5, equal_nan=True)


@pytest.mark.parametrize(
    ("stats", "match"),
    [
        ([], "name at least one statistic"),
        (["mean", "mean"], "'mean' named more than once"),
        (["median"], "'median' not among"),
        ("mean", "expected a list of str"),
    ],
)
def test_bad_stats_are_refused_before_launch(stats: Any, match: str) -> None:
    with pytest.raises(ParameterValueError, match=match):
        pipeline(stats).validate(plugins())
