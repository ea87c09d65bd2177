"""Fusion on the device (issue 11, item 5): preprocess -> compute, fused by the planner,
runs on the triton backend as one kernel that reads each row once, with the results of
the two stages apart, bit for bit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from pydotcompute import Pipeline, PipelineRun, StageError
from pydotcompute.plugins import create_plugin_manager
from pydotcompute.stage import RecordBatch, record_ids_for_rows, row_indices

pytest.importorskip("triton")

pytestmark = pytest.mark.interpreter

STATS = ["mean", "std", "var", "min", "max", "sum", "range"]


def rows(dtype: torch.dtype, n: int, width: int, seed: int = 0) -> torch.Tensor:
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((n, width))).to(dtype)
    x[1, 0] = float("nan")  # NaN propagates to every statistic
    x[2] = 3.0  # a constant row normalises to zeros
    x[3, 1] = float("inf")
    return x


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("width", [1, 3, 64, 100])
def test_the_fused_kernel_equals_the_two_launches(dtype: torch.dtype, width: int) -> None:
    from pydotcompute_triton import TritonBackend
    from pydotcompute_triton.ops import normalize_stats

    b = TritonBackend()
    x = rows(dtype, 37, max(width, 2))[:, :width]  # strided when width < 2
    got = normalize_stats(x, STATS)
    normalized = b.minmax_normalize(x)
    want = torch.stack([getattr(b, f"row_{s}")(normalized) for s in STATS], 1)
    assert got.dtype == torch.float32 and got.shape == (37, len(STATS))
    assert torch.equal(got.isnan(), want.isnan())
    assert torch.equal(got.nan_to_num(0.0), want.nan_to_num(0.0))


def test_the_fused_kernel_refuses_what_it_cannot_do() -> None:
    from pydotcompute_triton.ops import normalize_stats

    x = torch.zeros((2, 3))
    with pytest.raises(ValueError, match="distinct statistics"):
        normalize_stats(x, ["mean", "mean"])
    with pytest.raises(ValueError, match="distinct statistics"):
        normalize_stats(x, ["median"])
    with pytest.raises(ValueError, match="1 to 4096 columns; got 5000"):
        normalize_stats(torch.zeros((2, 5000)), ["mean"])
    with pytest.raises(TypeError, match="float32, float16 or bfloat16"):
        normalize_stats(x.double(), ["mean"])


def test_the_backend_fuses_only_normalize_then_statistics() -> None:
    from pydotcompute_triton import TritonBackend

    b = TritonBackend()
    assert b.fuse_ops([("minmax_normalize",), ("row_stats", "mean", "max")]) is not None
    assert b.fuse_ops([("row_stats", "mean"), ("minmax_normalize",)]) is None
    assert b.fuse_ops([("minmax_normalize",), ("row_stats", "median")]) is None
    assert b.fuse_ops([("minmax_normalize",), None]) is None  # type: ignore[list-item]


def test_float64_and_wide_rows_take_the_two_operations() -> None:
    from pydotcompute_triton import TritonBackend

    b = TritonBackend()
    fused = b.fuse_ops([("minmax_normalize",), ("row_stats", "mean")])
    assert fused is not None
    x = torch.tensor([[16777217.0, 16777219.0, 16777221.0]], dtype=torch.float64)
    got = fused(x)
    assert got.dtype == torch.float64 and got.tolist() == [[0.5]]  # computed in float64


def feed(x: torch.Tensor, sizes: list[int]) -> list[RecordBatch]:
    out, start = [], 0
    for n in sizes:
        out.append(
            RecordBatch(values=x[start : start + n], record_ids=record_ids_for_rows(start, n, 2))
        )
        start += n
    return out


TELEMETRY: dict[bool, Any] = {}


async def run(fuse: bool, batches: list[RecordBatch], stats: list[str]) -> tuple[Any, Any]:
    pipeline = (
        Pipeline()
        .add_stage("preprocess", backend="triton", fuse=fuse)
        .add_stage("compute", backend="triton", fuse=fuse, params={"stats": stats})
    )
    plan = pipeline.validate(create_plugin_manager())
    async with PipelineRun(plan) as pipeline_run:
        results = [r async for r in pipeline_run.process(batches)]
        TELEMETRY[fuse] = {
            name: {k: getattr(t, k) for k in ("records_in", "records_out", "records_failed")}
            for name, t in pipeline_run.telemetry().items()
        }
    return plan, results


async def test_a_fused_pipeline_makes_one_launch_per_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydotcompute_triton.ops import _utils

    launched: list[str] = []
    real_call = _utils.Launch.__call__

    def counting(self: Any) -> None:
        launched.append(self.kernel.__name__)
        real_call(self)

    monkeypatch.setattr(_utils.Launch, "__call__", counting)
    x = rows(torch.float32, 40, 16)
    plan, fused = await run(True, feed(x, [16, 16, 8]), ["mean", "max"])
    assert plan.groups == (("preprocess", "compute"),)
    assert launched == ["_normalize_stats_kernel"] * 3  # one kernel per batch, ragged last
    launched.clear()
    _, apart = await run(False, feed(x, [16, 16, 8]), ["mean", "max"])
    assert sorted(set(launched)) == ["_minmax_normalize_kernel", "_row_reduce_kernel"]

    def by_row(results: list[Any]) -> np.ndarray:
        ids = np.concatenate([row_indices(r.record_ids) for r in results])
        values = np.concatenate([r.values for r in results])
        return values[np.argsort(ids)]

    assert by_row(fused).tobytes() == by_row(apart).tobytes()
    # Each member counted as if it ran: the same per-stage telemetry as apart.
    assert TELEMETRY[True] == TELEMETRY[False]
    assert TELEMETRY[True]["preprocess"]["records_out"] == 40
    assert all(r.columns == ("mean", "max") and r.field == "stats" for r in fused)


async def test_a_batch_the_fused_call_fails_on_is_named_after_its_member(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fused call fails, the batch goes through the members one by one, and the
    StageError names the member that failed, counted as its failure."""
    from pydotcompute_triton import TritonBackend

    def broken(self: Any, stats: Any, values: Any) -> Any:
        raise ValueError("the fused kernel failed")

    def bad_mean(self: Any, x: Any) -> Any:
        raise ValueError("no mean today")

    monkeypatch.setattr(TritonBackend, "_normalize_stats", broken)
    monkeypatch.setattr(TritonBackend, "row_mean", bad_mean)
    x = rows(torch.float32, 8, 4)
    _, results = await run(True, feed(x, [8]), ["mean"])
    (error,) = results
    assert type(error) is StageError and error.stage == "compute"
    assert "no mean today" in error.error
