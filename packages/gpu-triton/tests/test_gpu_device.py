"""The kernels, the backends and the ring on a real CUDA device (skipped without one).

    python -m pytest packages/gpu-triton/tests -m gpu

Real concurrency: thousands of programs per launch share the ring's completion ticket,
which the interpreter (programs one after another) cannot exercise.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("triton")

from pydotcompute_triton import CapturedStep, DeviceRing, TorchBackend, TritonBackend, ops
from pydotcompute_triton.ops import _ring_layout
from pydotcompute_triton.ops.row_reduce import REDUCTIONS

pytestmark = pytest.mark.gpu

CUDA = torch.device("cuda")
# (dtype, atol, rtol) for minmax_normalize: the GPU divides with div.rn, contracts no
# FMA and rounds to nearest on output, so float32 and float16 match numpy bit for bit.
DTYPES = [(torch.float32, 0.0, 0.0), (torch.float16, 0.0, 0.0), (torch.bfloat16, 1e-5, 1.6e-2)]
SHAPES = [(65_536, 64), (1000, 1000), (7, 4097), (3, 100_000), (1, 1)]


def randn(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen).to(dtype).to(CUDA)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("dtype", "atol", "rtol"), DTYPES)
def test_minmax_normalize(
    shape: tuple[int, int],
    dtype: torch.dtype,
    atol: float,
    rtol: float,
    ref: Any,
    assert_matches: Any,
    to_host_f32: Any,
) -> None:
    x = randn(shape, sum(shape), dtype)
    x[0, 0] = float("nan")
    if shape[1] > 1:
        x[-1] = 2.5  # a constant row
    expected = torch.from_numpy(ref.minmax_normalize(to_host_f32(x))).to(dtype).float().numpy()
    assert_matches(ops.minmax_normalize(x), expected, atol, rtol)


def test_minmax_normalize_of_strided_input(ref: Any, assert_matches: Any) -> None:
    x = randn((3000, 500), 5).t()[:, ::2]
    assert_matches(ops.minmax_normalize(x), ref.minmax_normalize(x.cpu().numpy()))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op", REDUCTIONS)
def test_row_reductions(op: str, shape: tuple[int, int], ref: Any, assert_matches: Any) -> None:
    x = randn(shape, 11 + sum(shape))
    expected = getattr(ref, f"row_{op}")(x.cpu().numpy())
    exact = op in ("min", "max")
    atol = 0.0 if exact else 1e-5 * (shape[1] ** 0.5 if op == "sum" else 1.0)
    assert_matches(getattr(ops, f"row_{op}")(x), expected, atol, 0.0 if exact else 1e-5)


def test_segment_sum(ref: Any, assert_matches: Any) -> None:
    x = randn((100_000, 96), 3)
    offsets = torch.sort(
        torch.randint(0, 100_001, (513,), generator=torch.Generator().manual_seed(4))
    ).values
    expected = ref.segment_sum(x.cpu().numpy(), offsets.numpy())
    assert_matches(ops.segment_sum(x, offsets.to(CUDA)), expected, 2e-3, 1e-5)


@pytest.mark.parametrize(("n_keys", "n"), [(1_000_000, 1000), (100_003, 7), (64, 1)])
def test_partition(n_keys: int, n: int, ref: Any) -> None:
    keys = torch.randint(-(2**40), 2**40, (n_keys,), generator=torch.Generator().manual_seed(n))
    got = ops.partition(keys.to(CUDA), n)
    for g, e in zip(got, ref.partition(keys.numpy(), n), strict=True):
        assert np.array_equal(g.cpu().numpy(), e)


@pytest.mark.parametrize("backend_cls", [TorchBackend, TritonBackend])
def test_backends_default_to_cuda(backend_cls: Any, ref: Any, assert_matches: Any) -> None:
    backend = backend_cls()
    assert backend.device.type == "cuda"
    x = np.random.default_rng(0).standard_normal((4096, 64)).astype(np.float32)
    out = backend.row_mean(backend.minmax_normalize(backend.asarray(x)))
    assert out.is_cuda
    assert_matches(out, ref.row_mean(ref.minmax_normalize(x)), 1e-6, 1e-5)


def test_big_push_and_pop_round_trip_under_real_concurrency() -> None:
    ring = DeviceRing(65_536, 1024, device=CUDA, meta_width=2)
    rows = randn((65_536, 1024), 8)
    meta = torch.arange(2 * 65_536, device=CUDA).reshape(65_536, 2)
    for _ in range(3):  # 16k programs per launch share one ticket, three times over
        assert ring.push(rows, meta) == 65_536
        assert ring.push(rows[:1], meta[:1]) == 0  # full
        got_rows, got_meta = ring.pop_with_meta(65_536)
        assert torch.equal(got_rows, rows) and torch.equal(got_meta, meta)
    stats = ring.statistics()
    assert (stats.size, stats.pushed, stats.popped) == (0, 3 * 65_536, 3 * 65_536)
    assert int(ring._state[_ring_layout.TICKET.value]) == 0


@pytest.mark.parametrize("policy", ["block", "reject", "drop_oldest"])
def test_ring_matches_deque_model(policy: str, ring_model: Any) -> None:
    rnd = random.Random(policy)
    capacity, width = 3000, 33
    ring = DeviceRing(capacity, width, device=CUDA, backpressure=policy, meta_width=1)
    model = ring_model(capacity, policy)
    next_id = 0
    for _ in range(200):
        if rnd.random() < 0.6:
            n = rnd.randint(0, 2 * capacity)
            ids = torch.arange(next_id, next_id + n, device=CUDA)
            next_id += n
            rows = ids[:, None].float().expand(n, width)
            assert ring.push(rows, ids[:, None]) == model.push(ids.tolist())
        else:
            m = rnd.randint(0, capacity + 10)
            rows, meta = ring.pop_with_meta(m)
            expected = model.pop(m)
            assert meta[:, 0].tolist() == expected
            assert torch.equal(rows[:, 0].long().cpu(), torch.tensor(expected, dtype=torch.int64))
    st = ring.statistics()
    assert (st.size, st.pushed, st.popped, st.dropped, st.rejected) == (
        len(model.items),
        model.pushed,
        model.popped,
        model.dropped,
        model.rejected,
    )


def test_captured_two_stage_step_matches_eager() -> None:
    x = randn((65_536, 64), 9)
    step = CapturedStep(lambda t: ops.row_mean(ops.minmax_normalize(t)), x)
    for seed in (10, 11):
        y = randn((65_536, 64), seed)
        assert torch.equal(step(y), ops.row_mean(ops.minmax_normalize(y)))


def test_captured_ring_push_pop_replays_advance_the_device_counters() -> None:
    ring = DeviceRing(100, 8, device=CUDA)
    rows = randn((40, 8), 12)

    def push_pop(t: torch.Tensor) -> torch.Tensor:
        ring.push_device(t)
        return ring.pop_device(30)[0]

    step = CapturedStep(push_pop, rows, warmup=1)  # the warm-up runs; the capture does not
    for _ in range(5):
        step(rows)
    torch.cuda.synchronize()
    stats = ring.statistics()
    assert stats.pushed == 40 * 6 and stats.popped == 30 * 6
    assert stats.size == 10 * 6


@pytest.mark.parametrize("backend", ["triton", "torch"])
def test_a_pipeline_keeps_batches_on_the_gpu_through_device_rings(backend: str, ref: Any) -> None:
    """preprocess -> compute on CUDA tensors: every row goes through the DeviceRing
    between the stages (smaller than two batches, so block makes the producer wait),
    and the results match the numpy backend."""
    import asyncio

    from pydotcompute import Pipeline, RecordBatch
    from pydotcompute.plugins import create_plugin_manager
    from pydotcompute.stage import record_ids_for_rows, row_indices

    x = randn((20_000, 64), seed=11)
    batches = [
        RecordBatch(values=x[i : i + 5_000], record_ids=record_ids_for_rows(i, 5_000, 1))
        for i in range(0, 20_000, 5_000)
    ]
    pipeline = (
        Pipeline()
        .add_stage("preprocess", backend=backend)
        .add_stage(  # apart, not fused: between them is a ring
            "compute",
            backend=backend,
            ring_rows=8_192,
            fuse=False,
            params={"stats": ["mean", "max"]},
        )
    )

    async def go() -> tuple[list[Any], Any]:
        async with pipeline.open(plugins=create_plugin_manager()) as run:
            results = [r async for r in run.process(batches)]
            (link,) = run.ring_links()["preprocess"].values()
            return results, link

    results, link = asyncio.run(go())
    stats = link.ring.statistics()
    assert (stats.pushed, stats.popped, stats.size, stats.dropped) == (20_000, 20_000, 0, 0)
    assert all(type(r.values) is np.ndarray for r in results)
    rows = np.concatenate([row_indices(r.record_ids) for r in results])
    table = np.concatenate([r.values for r in results])[np.argsort(rows)]
    normalized = ref.minmax_normalize(x.cpu().numpy())
    np.testing.assert_allclose(table[:, 0], ref.row_mean(normalized), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(table[:, 1], ref.row_max(normalized))
