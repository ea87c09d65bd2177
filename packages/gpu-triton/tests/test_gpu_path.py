"""Issue 11 on a real GPU: what the interpreter tests prove on the CPU, checked where
kernels are compiled, streams exist and copies are asynchronous (``-m gpu``; run by
benchmarks/gpu/run_gpu_checks.sh)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("triton")

from pydotcompute import Pipeline, PipelineRun
from pydotcompute.plugins import create_plugin_manager
from pydotcompute.stage import RecordBatch, record_ids_for_rows, row_indices

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")
STATS = ["mean", "std", "var", "min", "max", "sum", "range"]


def randn(
    shape: tuple[int, int], dtype: torch.dtype = torch.float32, seed: int = 0
) -> torch.Tensor:
    g = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(shape, generator=g).to(device=CUDA, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("width", [64, 1024, 100])
def test_the_fused_kernel_equals_the_two_launches(dtype: torch.dtype, width: int) -> None:
    from pydotcompute_triton import TritonBackend
    from pydotcompute_triton.ops import normalize_stats

    b = TritonBackend()
    x = randn((4099, width), dtype)
    x[1, 0] = float("nan")
    got = normalize_stats(x, STATS)
    normalized = b.minmax_normalize(x)
    want = torch.stack([getattr(b, f"row_{s}")(normalized) for s in STATS], 1)
    assert torch.equal(got.isnan(), want.isnan())
    assert torch.equal(got.nan_to_num(0.0), want.nan_to_num(0.0))


def test_ragged_batches_compile_no_new_variant() -> None:
    from pydotcompute_triton.ops import minmax_normalize, normalize_stats
    from pydotcompute_triton.ops.minmax_normalize import _minmax_normalize_kernel
    from pydotcompute_triton.ops.normalize_stats import _normalize_stats_kernel

    caches = getattr(_minmax_normalize_kernel, "device_caches", None)
    if caches is None:
        pytest.skip("this Triton keeps no device_caches to count compiled variants in")
    for rows in (4096, 1, 17, 65_536 + 3, 2):
        x = randn((rows, 64))
        minmax_normalize(x)
        normalize_stats(x, ["mean"])
    torch.cuda.synchronize()
    device = torch.cuda.current_device()
    for kernel in (_minmax_normalize_kernel, _normalize_stats_kernel):
        compiled = kernel.device_caches[device][0]
        assert len(compiled) == 1, f"{kernel.__name__}: {len(compiled)} variants for one width"


def test_a_ring_refuses_another_stream() -> None:
    from pydotcompute_triton import DeviceRing

    ring = DeviceRing(64, 8, device=CUDA)
    assert ring.stream == torch.cuda.current_stream()
    rows = randn((4, 8))
    other = torch.cuda.Stream()
    other.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(other), pytest.raises(ValueError, match="bound to stream"):
        ring.push(rows)
    assert ring.push(rows) == 4 and ring.pop(4).equal(rows)


async def test_the_async_host_copy_matches_a_blocking_one() -> None:
    from pydotcompute_triton._host_copy import to_numpy_async

    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        x = randn((65_536, 64), dtype)
        got = await to_numpy_async(x)
        want = x.float().cpu().numpy() if dtype == torch.bfloat16 else x.cpu().numpy()
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_launches_run_under_the_tensors_device() -> None:
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA devices")
    from pydotcompute_triton.ops import minmax_normalize

    x = torch.randn((100, 64), device="cuda:1")
    with torch.cuda.device(0):
        got = minmax_normalize(x)
    torch.cuda.synchronize(1)
    want = minmax_normalize(x.to("cuda:0")).to("cuda:1")
    assert got.device == x.device and torch.equal(got, want)


def batches(x: torch.Tensor, rows: int) -> list[RecordBatch]:
    return [
        RecordBatch(
            values=x[i : i + rows], record_ids=record_ids_for_rows(i, min(rows, len(x) - i), 1)
        )
        for i in range(0, len(x), rows)
    ]


@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_the_guide_pipeline_on_the_gpu(fuse: bool, dtype: torch.dtype, ref: Any) -> None:
    """Fused (one kernel a batch) or apart (by reference), half precision kept, a ragged
    last batch, results through the async sink equal to the numpy backend's."""
    x = randn((20_003, 64), dtype, seed=5)
    pipeline = (
        Pipeline()
        .add_stage("preprocess", backend="triton", fuse=fuse)
        .add_stage("compute", backend="triton", fuse=fuse, params={"stats": ["mean", "max"]})
    )
    plan = pipeline.validate(create_plugin_manager())

    async def go() -> list[Any]:
        async with PipelineRun(plan) as run:
            return [r async for r in run.process(batches(x, 4096))]

    results = asyncio.run(go())
    assert all(type(r.values) is np.ndarray and r.values.dtype == np.float32 for r in results)
    ids = np.concatenate([row_indices(r.record_ids) for r in results])
    table = np.concatenate([r.values for r in results])[np.argsort(ids)]
    assert len(table) == len(x)
    from pydotcompute_triton import TorchBackend

    normalized = TorchBackend("cuda").minmax_normalize(x).float().cpu().numpy()
    np.testing.assert_allclose(table[:, 0], ref.row_mean(normalized), rtol=1e-5, atol=1e-6)
    step = 0.0 if dtype == torch.float32 else 2.0**-8  # one bfloat16 step, if rounded apart
    np.testing.assert_allclose(table[:, 1], ref.row_max(normalized), rtol=0, atol=step)
