"""Min-max normalisation and row statistics in one read of the rows: the fused kernel
of a ``preprocess -> compute`` chain on the Triton backend.

Each program loads its tile once, normalises it in registers exactly as
:mod:`.minmax_normalize` does (rounded to the input's dtype, as the normalised rows
would have been stored), and reduces it exactly as :mod:`.row_reduce`'s single-pass
tile does, so the results equal the two launches' bit for bit. Only the statistics are
written: ``(rows, k)`` float32, one column per statistic asked for, in order. Rows of
one width class's single-pass tile only (up to 4,096 columns); wider rows take the two
launches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import torch
import triton
import triton.language as tl

from .._checks import check_2d, check_kernel_float, require_tensor
from ._utils import Launch, cdiv, check_launchable, row_tile
from .minmax_normalize import _normalize
from .row_reduce import REDUCTIONS

__all__ = ["FUSED_MAX_WIDTH", "normalize_stats", "plan_normalize_stats"]

#: The widest rows the fused kernel takes (the last single-pass tile).
FUSED_MAX_WIDTH: Final = 4096


@triton.jit(do_not_specialize=["n_rows"])  # type: ignore[untyped-decorator]
def _normalize_stats_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    out_ptr,
    n_rows,
    n_cols,
    x_row_stride,
    x_col_stride,
    out_row_stride,
    SUM: tl.constexpr,  # output column of each statistic, -1 when not asked for
    MEAN: tl.constexpr,
    MIN: tl.constexpr,
    MAX: tl.constexpr,
    STD: tl.constexpr,
    VAR: tl.constexpr,
    RANGE: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < n_rows
    cols = tl.arange(0, BLOCK_N)
    mask = row_ok[:, None] & (cols[None, :] < n_cols)
    x = tl.load(
        x_ptr + rows[:, None] * x_row_stride + cols[None, :].to(tl.int64) * x_col_stride,
        mask=mask,
        other=0.0,
    )
    xf = x.to(tl.float32)
    valid = mask & (xf == xf)
    lo = tl.min(tl.where(valid, xf, float("inf")), axis=1)
    hi = tl.max(tl.where(valid, xf, float("-inf")), axis=1)
    y = _normalize(xf, lo, hi)
    # What preprocess would have stored, read back by compute: rounded to x's dtype.
    y = y.to(x_ptr.dtype.element_ty).to(tl.float32)
    y = tl.where(mask, y, 0.0)
    out_rows = out_ptr + rows * out_row_stride
    if MIN >= 0 or MAX >= 0 or RANGE >= 0:
        ok = mask & (y == y)
        nans = tl.sum((y != y).to(tl.int32), axis=1)
        y_lo = tl.min(tl.where(ok, y, float("inf")), axis=1)
        y_hi = tl.max(tl.where(ok, y, float("-inf")), axis=1)
        if MIN >= 0:
            tl.store(out_rows + MIN, tl.where(nans > 0, float("nan"), y_lo), mask=row_ok)
        if MAX >= 0:
            tl.store(out_rows + MAX, tl.where(nans > 0, float("nan"), y_hi), mask=row_ok)
        if RANGE >= 0:
            tl.store(out_rows + RANGE, tl.where(nans > 0, float("nan"), y_hi - y_lo), mask=row_ok)
    if SUM >= 0 or MEAN >= 0 or STD >= 0 or VAR >= 0:
        total = tl.sum(y, axis=1)
        if SUM >= 0:
            tl.store(out_rows + SUM, total, mask=row_ok)
        width = tl.zeros((BLOCK_M,), tl.float32) + n_cols
        mean = tl.div_rn(total, width)
        if MEAN >= 0:
            tl.store(out_rows + MEAN, mean, mask=row_ok)
        if STD >= 0 or VAR >= 0:
            d = tl.where(mask, y - mean[:, None], 0.0)
            var = tl.div_rn(tl.sum(d * d, axis=1), width)
            if VAR >= 0:
                tl.store(out_rows + VAR, var, mask=row_ok)
            if STD >= 0:
                tl.store(out_rows + STD, tl.sqrt_rn(var), mask=row_ok)


def plan_normalize_stats(x: torch.Tensor, out: torch.Tensor, stats: Sequence[str]) -> Launch:
    """The launch that writes ``stats`` of the normalised rows of ``x`` (2-D, not empty,
    at most :data:`FUSED_MAX_WIDTH` columns) into the columns of ``out``."""
    n_rows, n_cols = x.shape
    tile = row_tile(n_cols)
    columns = {name.upper(): stats.index(name) if name in stats else -1 for name in REDUCTIONS}
    return Launch(
        _normalize_stats_kernel,
        (cdiv(n_rows, tile.block_m),),
        (x, out, n_rows, n_cols, x.stride(0), x.stride(1), out.stride(0)),
        {**columns, "BLOCK_M": tile.block_m, "BLOCK_N": tile.block_n},
        tile.num_warps,
    )


def normalize_stats(x: torch.Tensor, stats: Sequence[str]) -> torch.Tensor:
    """``stats`` (names of :data:`~.row_reduce.REDUCTIONS`) of each row of ``x`` after
    min-max normalisation, as ``(rows, len(stats))`` float32: what
    ``row_<stat>(minmax_normalize(x))`` gives for each, in one launch and one read.

    Raises:
        TypeError: ``x`` is not a float32/float16/bfloat16 tensor.
        ValueError: ``x`` is not 2-D, is wider than :data:`FUSED_MAX_WIDTH` or has no
            columns, or ``stats`` is empty, repeats a name or names no reduction.
    """
    x = require_tensor(x, "normalize_stats input")
    check_2d(x, "normalize_stats")
    check_kernel_float(x, "normalize_stats")
    check_launchable(x, "normalize_stats input")
    from pydotcompute.errors import InvalidArgumentError

    unknown = [s for s in stats if s not in REDUCTIONS]
    if not stats or unknown or len(set(stats)) != len(stats):
        raise InvalidArgumentError(
            f"normalize_stats takes distinct statistics among {', '.join(REDUCTIONS)}; "
            f"got {list(stats)!r}"
        )
    n_rows, n_cols = x.shape
    if not 1 <= n_cols <= FUSED_MAX_WIDTH:
        raise InvalidArgumentError(
            f"normalize_stats takes rows of 1 to {FUSED_MAX_WIDTH} columns; got {n_cols}"
        )
    out = torch.empty((n_rows, len(stats)), dtype=torch.float32, device=x.device)
    if n_rows:
        plan_normalize_stats(x, out, stats)()
    return out
