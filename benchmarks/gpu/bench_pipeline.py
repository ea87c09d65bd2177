"""End-to-end records/s of a two-stage micro-batch, preprocess -> compute, on the device.

preprocess = minmax_normalize, compute = row_mean, on batches of 65,536 records x 64
float32 that stay on the device: the Triton backend (two launches), the same recorded as
one CUDA graph, and the torch backend's eager ops for comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

ROWS, WIDTH = 65_536, 64
ITERATIONS = 50


def _run(
    benchmark: Any,
    timed: Any,
    step: Callable[[torch.Tensor], torch.Tensor],
    label: str,
    launches: int | None,
) -> None:
    x = torch.randn((ROWS, WIDTH), device="cuda")
    step(x)  # compile / warm up outside the timing
    benchmark.pedantic(timed(lambda: step(x), ITERATIONS), rounds=10, warmup_rounds=1)
    seconds = benchmark.stats.stats.median / ITERATIONS
    benchmark.extra_info.update(
        pipeline=label,
        records_per_batch=ROWS,
        width=WIDTH,
        seconds_per_batch=seconds,
        records_per_s=ROWS / seconds,
        launches_per_batch=launches,
        device=torch.cuda.get_device_name(),
    )


def test_two_stage_triton(benchmark: Any, timed: Any) -> None:
    from pydotcompute_triton import TritonBackend

    b = TritonBackend()
    _run(benchmark, timed, lambda x: b.row_mean(b.minmax_normalize(x)), "triton", 2)


def test_two_stage_triton_cuda_graph(benchmark: Any, timed: Any) -> None:
    from pydotcompute_triton import CapturedStep
    from pydotcompute_triton.ops import minmax_normalize, row_mean

    example = torch.randn((ROWS, WIDTH), device="cuda")
    step = CapturedStep(lambda x: row_mean(minmax_normalize(x)), example)
    _run(benchmark, timed, step, "triton + CUDA graph", 1)


def test_two_stage_torch_eager(benchmark: Any, timed: Any) -> None:
    from pydotcompute_triton import TorchBackend

    b = TorchBackend("cuda")
    _run(
        benchmark,
        timed,
        lambda x: b.row_mean(b.minmax_normalize(x)),
        "torch eager (same policy)",
        None,
    )
