"""Kernel figures at widths 64 and 1,024, inputs rotated past the L2 cache.

* Bandwidth of ``minmax_normalize``, the fused ``normalize_stats`` kernel and a device
  ring's push + pop, as bytes/s and as fractions of the data-sheet peak and of a measured
  device-to-device copy (bytes counted: what each kernel must read and write).
* The guide's two steps (normalise, then the row mean) on one batch four ways: the fused
  Triton kernel, the two Triton kernels, torch eager ops, and ``torch.compile`` of the
  eager function; the others as ratios of the fused kernel's time.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import pytest
import torch
from gpu_harness import (
    WIDTHS,
    Mode,
    Rotation,
    bandwidth_figures,
    guide_compiled,
    guide_eager,
    seconds_per_call,
)


def median_seconds(fn: Callable[[int], Any], mode: Mode) -> float:
    fn(0)  # compile and warm outside the timing
    return statistics.median(
        seconds_per_call(fn, mode.iterations, mode.device) for _ in range(mode.rounds)
    )


def _record(benchmark: Any, fn: Callable[[int], Any], mode: Mode, **figures: Any) -> None:
    """Time ``fn`` through pytest-benchmark too (its own statistics in the JSON)."""
    calls = iter(range(10**9))
    benchmark.pedantic(lambda: fn(next(calls)), rounds=mode.rounds, warmup_rounds=1)
    benchmark.extra_info.update(figures)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("op", ["minmax_normalize", "normalize_stats", "ring_push_pop"])
def test_kernel_bandwidth(
    benchmark: Any, mode: Mode, references: dict[str, Any], op: str, width: int
) -> None:
    from pydotcompute_triton import DeviceRing
    from pydotcompute_triton.ops import minmax_normalize, normalize_stats

    rows = Rotation(mode, (mode.rows, width))
    batch = rows.nbytes
    if op == "minmax_normalize":
        fn: Callable[[int], Any] = lambda i: minmax_normalize(rows[i])  # noqa: E731
        moved = 2 * batch  # read once, write once
    elif op == "normalize_stats":
        fn = lambda i: normalize_stats(rows[i], ("mean",))  # noqa: E731
        moved = batch + 4 * mode.rows  # read once, one float32 a row out
    else:
        ring = DeviceRing(mode.rows, width, device=mode.device)

        def fn(i: int) -> Any:
            ring.push_device(rows[i])
            return ring.pop_device(mode.rows)

        moved = 4 * batch  # push: read + write, pop: read + write
    seconds = median_seconds(fn, mode)
    _record(
        benchmark,
        fn,
        mode,
        op=op,
        width=width,
        rows=mode.rows,
        records_per_s=mode.rows / seconds,
        **bandwidth_figures(moved, seconds, references),
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_two_steps_fused_against_torch(
    benchmark: Any, mode: Mode, references: dict[str, Any], width: int
) -> None:
    from pydotcompute_triton import TritonBackend
    from pydotcompute_triton.ops import normalize_stats

    rows = Rotation(mode, (mode.rows, width))
    triton_b = TritonBackend(mode.device)
    eager, graph = guide_eager(mode), guide_compiled(mode)
    ways: dict[str, Callable[[int], Any]] = {
        "fused": lambda i: normalize_stats(rows[i], ("mean",)),
        "triton_two_kernels": lambda i: triton_b.row_mean(triton_b.minmax_normalize(rows[i])),
        "torch_eager": lambda i: eager(rows[i]),
        "torch_compile": lambda i: graph(rows[i]),
    }
    seconds: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name, fn in ways.items():
        try:
            seconds[name] = median_seconds(fn, mode)
        except Exception as exc:  # a baseline that cannot run here is reported, not fatal
            if name == "fused":
                raise
            errors[name] = f"{type(exc).__name__}: {exc}"[:500]
    fused = seconds["fused"]
    _record(
        benchmark,
        ways["fused"],
        mode,
        op="normalize+mean",
        width=width,
        rows=mode.rows,
        seconds=seconds,
        records_per_s={name: mode.rows / s for name, s in seconds.items()},
        # How many times longer each way takes than the fused kernel (> 1: fused wins).
        ratio_to_fused={name: s / fused for name, s in seconds.items()},
        errors=errors,
        **bandwidth_figures(rows.nbytes + 4 * mode.rows, fused, references),
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_tile_sweep(benchmark: Any, mode: Mode, references: dict[str, Any], width: int) -> None:
    """minmax_normalize with the width class's tile and its neighbours (half and twice
    the rows a program, 4 and 8 warps): the figures a change to the table in
    pydotcompute_triton/ops/_utils.py (WIDTH_CLASSES) should cite."""
    import dataclasses

    from pydotcompute_triton.ops._utils import row_tile
    from pydotcompute_triton.ops.minmax_normalize import plan_minmax_normalize

    rows = Rotation(mode, (mode.rows, width))
    out = torch.empty_like(rows[0])
    table = row_tile(width)
    tiles = {
        f"block_m={block_m},warps={warps}": dataclasses.replace(
            table, block_m=block_m, num_warps=warps
        )
        for block_m in sorted({max(1, table.block_m // 2), table.block_m, table.block_m * 2})
        for warps in (4, 8)
    }

    def launch(tile: Any) -> Callable[[int], Any]:
        def run(i: int) -> None:
            plan = plan_minmax_normalize(rows[i], out)
            grid = (-(-mode.rows // tile.block_m),)
            constexprs = {**plan.constexprs, "BLOCK_M": tile.block_m}
            dataclasses.replace(plan, grid=grid, constexprs=constexprs, num_warps=tile.num_warps)()

        return run

    seconds = {name: median_seconds(launch(tile), mode) for name, tile in tiles.items()}
    chosen = f"block_m={table.block_m},warps={table.num_warps}"
    best = min(seconds, key=seconds.__getitem__)
    _record(
        benchmark,
        launch(table),
        mode,
        op="minmax_normalize tile sweep",
        width=width,
        rows=mode.rows,
        table_tile=chosen,
        best_tile=best,
        bandwidth_bytes_per_s={n: 2 * rows.nbytes / s for n, s in seconds.items()},
        # > 1: the table's tile is that many times slower than the best one measured.
        table_over_best=seconds[chosen] / seconds[best],
        device=references["device"],
        interpreted=references["interpreted"],
    )
