"""Dtypes kept end to end on the torch and Triton backends (issue 11, item 4).

float16 and bfloat16 rows stay float16 and bfloat16 from stage to stage (no upcast
kernel, half the bytes); arithmetic accumulates in float32; statistics come out in
float32, the compute dtype (a float16 sum overflows at 65,504). numpy has no bfloat16,
so bfloat16 results reach the host as float32 holding the bfloat16 values exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from pydotcompute import Pipeline, PipelineRun
from pydotcompute.dataflow import RING_BYTES
from pydotcompute.plugins import create_plugin_manager
from pydotcompute.stage import RecordBatch, record_ids_for_rows, row_indices


@functools.cache
def torch_cpu() -> Any:
    from pydotcompute_triton import TorchBackend

    return TorchBackend("cpu")


@functools.cache
def triton_here() -> Any:
    from pydotcompute_triton import TritonBackend

    return TritonBackend()


BACKENDS = [
    pytest.param(torch_cpu, "torch", id="torch-cpu"),
    pytest.param(triton_here, "triton", id="triton-interpreter", marks=pytest.mark.interpreter),
]
HALVES = [torch.float16, torch.bfloat16]


@pytest.mark.parametrize(("factory", "name"), BACKENDS)
@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_minmax_normalize_keeps_the_dtype_and_rounds_a_float32_result(
    factory: Callable[[], Any], name: str, dtype: torch.dtype
) -> None:
    x = torch.tensor([[1.0, 2.0, 3.0, 5.0], [7.0, 7.0, 7.0, 7.0], [-4.0, 0.0, 4.0, 12.0]])
    out = factory().minmax_normalize(x.to(dtype))
    assert out.dtype == dtype
    x32 = x.to(dtype).to(torch.float32)
    lo, hi = x32.amin(1, keepdim=True), x32.amax(1, keepdim=True)
    want = torch.where(hi > lo, (x32 - lo) / torch.where(hi > lo, hi - lo, 1.0), 0.0)
    assert torch.equal(out, want.to(dtype))


@pytest.mark.parametrize(("factory", "name"), BACKENDS)
@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_reductions_of_half_rows_accumulate_in_float32(
    factory: Callable[[], Any], name: str, dtype: torch.dtype
) -> None:
    # bfloat16 holds integers exactly only to 256, float16 to 2048: a sum accumulated in
    # either would stall far below 4096.
    x = torch.ones((3, 4096), dtype=dtype)
    b = factory()
    for op, want in (("row_sum", 4096.0), ("row_mean", 1.0), ("row_var", 0.0)):
        got = getattr(b, op)(x)
        assert got.dtype == torch.float32, op
        assert got.tolist() == [want] * 3, op


@pytest.mark.parametrize(("factory", "name"), BACKENDS)
def test_clip_and_row_handling_keep_bfloat16(factory: Callable[[], Any], name: str) -> None:
    b = factory()
    x = torch.tensor([[0.5, 3.0], [-2.0, 1.5]], dtype=torch.bfloat16)
    assert b.clip(x, 0.0, 1.0).dtype == torch.bfloat16
    assert b.concat_rows([x, x]).dtype == torch.bfloat16
    assert b.take_rows(x, [1]).dtype == torch.bfloat16
    assert b.asarray(x, None) is x  # no conversion, no copy


def feed(dtype: torch.dtype, rows: int = 64, width: int = 16) -> tuple[list[RecordBatch], Any]:
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((rows, width))).to(dtype)
    half = rows // 2
    return [
        RecordBatch(values=x[:half], record_ids=record_ids_for_rows(0, half, 1)),
        RecordBatch(values=x[half:], record_ids=record_ids_for_rows(half, rows - half, 1)),
    ], x


@pytest.mark.parametrize(("factory", "name"), BACKENDS)
@pytest.mark.parametrize("dtype", HALVES, ids=str)
async def test_a_pipeline_keeps_half_rows_between_stages(
    factory: Callable[[], Any], name: str, dtype: torch.dtype
) -> None:
    """preprocess -> compute apart: the rows handed over are still 2 bytes a value
    (the link's bound counts them so), and the results are the float32 statistics of
    the normalized half-precision rows."""
    factory()  # skips cleanly where the backend cannot run
    batches, x = feed(dtype)
    pipeline = (
        Pipeline()
        .add_stage("preprocess", backend=name)
        .add_stage("compute", backend=name, fuse=False, params={"stats": ["mean", "max"]})
    )
    async with PipelineRun(pipeline.validate(create_plugin_manager())) as run:
        results = [r async for r in run.process(batches)]
        (link,) = run.ring_links()["preprocess"].values()
    assert link.by_reference and link.capacity == RING_BYTES // (x.shape[1] * 2)
    ids = np.concatenate([row_indices(r.record_ids) for r in results])
    stats = np.concatenate([r.values for r in results])
    assert stats.dtype == np.float32
    normalized = torch_cpu().minmax_normalize(x).to(torch.float32)[torch.from_numpy(ids)]
    # The interpreter casts float32 -> bfloat16 by truncation where a GPU (and torch)
    # round to nearest even: one bfloat16 step (2**-8) apart at most.
    step = 2.0**-8 if name == "triton" and dtype == torch.bfloat16 else 0.0
    np.testing.assert_allclose(stats[:, 0], normalized.mean(1).numpy(), rtol=1e-6, atol=step)
    np.testing.assert_allclose(stats[:, 1], normalized.amax(1).numpy(), rtol=0, atol=step)


@pytest.mark.parametrize(("factory", "name"), BACKENDS)
async def test_float16_rows_reach_the_host_as_float16(
    factory: Callable[[], Any], name: str
) -> None:
    factory()
    batches, x = feed(torch.float16)
    pipeline = Pipeline().add_stage("preprocess", backend=name)
    async with PipelineRun(pipeline.validate(create_plugin_manager())) as run:
        results = [r async for r in run.process(batches)]
    assert {r.values.dtype for r in results} == {np.dtype(np.float16)}
    got = np.concatenate([r.values for r in sorted(results, key=lambda r: int(r.record_ids[0][1]))])
    np.testing.assert_array_equal(got, torch_cpu().minmax_normalize(x).numpy())
