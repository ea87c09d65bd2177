"""Segment sums: row ``i`` of the result sums rows ``offsets[i]:offsets[i+1]`` of ``x``.

One launch over (segments, column blocks); each program walks its segment's rows in
tiles and accumulates in float32. Results are float32 like the numpy backend's; an empty
segment sums to zeros. Validating ``offsets`` reads one flag back to the host (the only
synchronisation here); ``check=False`` skips it, and the kernel then clamps each segment
into ``[0, rows]`` the way a Python slice would (a decreasing pair is an empty segment).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from pydotcompute.errors import InvalidArgumentError

from .._checks import (
    check_2d,
    check_kernel_float,
    check_offsets_shape,
    check_offsets_values,
    require_tensor,
)
from ._utils import Launch, cdiv, check_launchable, row_tile

__all__ = ["plan_segment_sum", "segment_sum", "segment_tile"]


@triton.jit(do_not_specialize=["n_rows"])  # type: ignore[untyped-decorator]
def _segment_sum_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    offsets_ptr,
    out_ptr,
    n_rows,
    n_cols,
    x_row_stride,
    x_col_stride,
    offsets_stride,
    out_row_stride,
    BLOCK_R: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    seg = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    col_ok = cols < n_cols
    start = tl.load(offsets_ptr + seg * offsets_stride)
    end = tl.load(offsets_ptr + (seg + 1) * offsets_stride)
    start = tl.minimum(tl.maximum(start, 0), n_rows)
    end = tl.minimum(tl.maximum(end, start), n_rows)
    r = tl.arange(0, BLOCK_R)
    x_cols = x_ptr + cols[None, :].to(tl.int64) * x_col_stride
    acc = tl.zeros((BLOCK_R, BLOCK_C), tl.float32)
    for r0 in range(start, end, BLOCK_R):
        rows = r0 + r
        mask = (rows < end)[:, None] & col_ok[None, :]
        x = tl.load(x_cols + rows[:, None] * x_row_stride, mask=mask, other=0.0)
        acc += x.to(tl.float32)
    tl.store(out_ptr + seg * out_row_stride + cols, tl.sum(acc, axis=0), mask=col_ok)


def segment_tile(width: int) -> tuple[int, int, int]:
    """``(BLOCK_R, BLOCK_C, num_warps)`` for rows of ``width`` columns: the row tile of
    its width class."""
    tile = row_tile(width)
    return tile.block_m, tile.block_n, tile.num_warps


def segment_sum(x: torch.Tensor, offsets: torch.Tensor, *, check: bool = True) -> torch.Tensor:
    """Sum the rows of each segment ``offsets[i]:offsets[i+1]`` into a float32 ``(k, width)``.

    ``x`` is a 2-D float32/float16/bfloat16 tensor (any strides); ``offsets`` has ``k + 1``
    integer entries on ``x``'s device, non-decreasing and within ``[0, len(x)]``; rows
    outside ``offsets[0]:offsets[-1]`` are ignored. NaN propagates within its segment.
    One launch (none when the result is empty); with ``check=True`` one host sync.

    Raises:
        TypeError: ``x`` or ``offsets`` is not a tensor, or ``x`` has an unsupported dtype.
        ValueError: ``x`` is not 2-D, or ``offsets`` is not a non-empty 1-D integer tensor
            (or, with ``check=True``, not non-decreasing within ``[0, len(x)]``), or the
            two live on different devices.
    """
    x = require_tensor(x, "segment_sum input")
    offsets = require_tensor(offsets, "segment_sum offsets")
    check_2d(x, "segment_sum")
    check_kernel_float(x, "segment_sum")
    check_offsets_shape(offsets)
    if offsets.device != x.device:
        raise InvalidArgumentError(
            f"segment_sum offsets are on {offsets.device} but x is on {x.device}; "
            "put both on the same device"
        )
    check_launchable(x, "segment_sum input")
    n_rows, n_cols = x.shape
    if check:
        check_offsets_values(offsets, n_rows)
    k = offsets.numel() - 1
    if k == 0 or n_cols == 0:
        return torch.zeros((k, n_cols), dtype=torch.float32, device=x.device)
    offsets = offsets.to(torch.int64)  # no copy when already int64
    out = torch.empty((k, n_cols), dtype=torch.float32, device=x.device)
    plan_segment_sum(x, offsets, out)()
    return out


def plan_segment_sum(x: torch.Tensor, offsets: torch.Tensor, out: torch.Tensor) -> Launch:
    """The launch that sums ``x``'s segments (int64 ``offsets``) into ``out``."""
    n_rows, n_cols = x.shape
    block_r, block_c, warps = segment_tile(n_cols)
    return Launch(
        _segment_sum_kernel,
        (offsets.numel() - 1, cdiv(n_cols, block_c)),
        (
            x,
            offsets,
            out,
            n_rows,
            n_cols,
            x.stride(0),
            x.stride(1),
            offsets.stride(0),
            out.stride(0),
        ),
        {"BLOCK_R": block_r, "BLOCK_C": block_c},
        warps,
    )
