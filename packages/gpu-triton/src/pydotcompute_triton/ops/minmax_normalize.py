"""Row-wise min-max normalisation: one launch, no host synchronisation.

Policy (pydotcompute's ``_backend`` module, read as its numpy backend reads it): per row,
``lo``/``hi`` are the min/max over non-NaN entries (infinities count); where
``hi - lo > 0`` the result is ``(x - lo) / (hi - lo)`` in IEEE float32 arithmetic
(correctly rounded division, ``tl.div_rn``); elsewhere ``0.0``; a NaN input stays NaN.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._checks import check_2d, check_kernel_float, require_tensor
from ._utils import Launch, cdiv, check_launchable, row_tile

__all__ = ["minmax_normalize", "plan_minmax_normalize"]


@triton.jit
def _normalize(x, lo, hi):  # type: ignore[no-untyped-def]
    """Apply the policy to a float32 tile ``x`` given per-row ``lo`` and ``hi``."""
    span = hi - lo  # NaN for inf - inf, -inf for rows without a non-NaN entry
    good = span > 0  # False for NaN spans too
    safe = tl.where(good, span, 1.0)
    y = tl.div_rn(x - lo[:, None], safe[:, None])
    y = tl.where(good[:, None], y, 0.0)
    return tl.where(x == x, y, x)  # NaN inputs stay NaN


@triton.jit(do_not_specialize=["n_rows"])  # type: ignore[untyped-decorator]
def _minmax_normalize_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    out_ptr,
    n_rows,
    n_cols,
    x_row_stride,
    x_col_stride,
    out_row_stride,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    SINGLE_PASS: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < n_rows
    cols = tl.arange(0, BLOCK_N)
    x_rows = x_ptr + rows[:, None] * x_row_stride
    out_rows = out_ptr + rows[:, None] * out_row_stride
    if SINGLE_PASS:
        mask = row_ok[:, None] & (cols[None, :] < n_cols)
        x = tl.load(x_rows + cols[None, :].to(tl.int64) * x_col_stride, mask=mask, other=0.0)
        x = x.to(tl.float32)
        valid = mask & (x == x)
        lo = tl.min(tl.where(valid, x, float("inf")), axis=1)
        hi = tl.max(tl.where(valid, x, float("-inf")), axis=1)
        y = _normalize(x, lo, hi)
        tl.store(out_rows + cols[None, :], y.to(out_ptr.dtype.element_ty), mask=mask)
    else:
        # Long rows: one pass over the column blocks for lo/hi, a second to write.
        lo = tl.full((BLOCK_M,), float("inf"), tl.float32)
        hi = tl.full((BLOCK_M,), float("-inf"), tl.float32)
        for start in range(0, n_cols, BLOCK_N):
            c = start + cols
            mask = row_ok[:, None] & (c[None, :] < n_cols)
            x = tl.load(x_rows + c[None, :].to(tl.int64) * x_col_stride, mask=mask, other=0.0)
            x = x.to(tl.float32)
            valid = mask & (x == x)
            lo = tl.minimum(lo, tl.min(tl.where(valid, x, float("inf")), axis=1))
            hi = tl.maximum(hi, tl.max(tl.where(valid, x, float("-inf")), axis=1))
        for start in range(0, n_cols, BLOCK_N):
            c = start + cols
            mask = row_ok[:, None] & (c[None, :] < n_cols)
            x = tl.load(x_rows + c[None, :].to(tl.int64) * x_col_stride, mask=mask, other=0.0)
            y = _normalize(x.to(tl.float32), lo, hi)
            tl.store(out_rows + c[None, :], y.to(out_ptr.dtype.element_ty), mask=mask)


def minmax_normalize(x: torch.Tensor) -> torch.Tensor:
    """Row-wise min-max normalise a 2-D tensor into a new contiguous tensor of its dtype.

    ``x`` may be float32, float16 or bfloat16 and strided in both dimensions; arithmetic
    is float32. Empty batches and width-0 rows return an empty result without launching.
    One kernel launch otherwise; it does not synchronise with the host.

    Raises:
        TypeError: ``x`` is not a tensor, or not float32/float16/bfloat16.
        ValueError: ``x`` is not 2-D.
    """
    x = require_tensor(x, "minmax_normalize input")
    check_2d(x, "minmax_normalize")
    check_kernel_float(x, "minmax_normalize")
    check_launchable(x, "minmax_normalize input")
    n_rows, n_cols = x.shape
    out = torch.empty((n_rows, n_cols), dtype=x.dtype, device=x.device)
    if n_rows == 0 or n_cols == 0:
        return out
    plan_minmax_normalize(x, out)()
    return out


def plan_minmax_normalize(x: torch.Tensor, out: torch.Tensor) -> Launch:
    """The launch that normalises ``x`` (2-D, at least one row and column) into ``out``."""
    n_rows, n_cols = x.shape
    tile = row_tile(n_cols)
    return Launch(
        _minmax_normalize_kernel,
        (cdiv(n_rows, tile.block_m),),
        (x, out, n_rows, n_cols, x.stride(0), x.stride(1), out.stride(0)),
        {"BLOCK_M": tile.block_m, "BLOCK_N": tile.block_n, "SINGLE_PASS": tile.single_pass},
        tile.num_warps,
    )
