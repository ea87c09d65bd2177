"""Row reductions (sum, mean, min, max, population std and variance, range): one kernel,
one launch each.

Policy (pydotcompute's ``_backend`` module): results are float32, accumulated in float32,
and NaN propagates (``tl.min``/``tl.max`` ignore NaN, so min and max count NaNs
explicitly). A width-0 row gives NaN, except ``row_sum`` which gives 0.0. ``row_var`` is
two-pass (mean first, then the mean squared deviation), like the numpy backend, and
``row_std`` its square root; ``inf`` turns into NaN there through ``inf - inf``.
``row_range`` is ``max - min`` from one pass that tracks both. Summation order differs
from numpy's pairwise sums, so sums agree to float32 rounding, not bit for bit; min, max
and range agree exactly.
"""

from __future__ import annotations

from typing import Final

import torch
import triton
import triton.language as tl

from .._checks import check_2d, check_kernel_float, require_tensor
from ._utils import Launch, cdiv, check_launchable, row_tile

__all__ = [
    "REDUCTIONS",
    "plan_row_reduce",
    "row_max",
    "row_mean",
    "row_min",
    "row_range",
    "row_std",
    "row_sum",
    "row_var",
]

#: The reductions this module offers, in the order of their ``OP`` code in the kernel.
REDUCTIONS: Final = ("sum", "mean", "min", "max", "std", "var", "range")


@triton.jit(do_not_specialize=["n_rows"])  # type: ignore[untyped-decorator]
def _row_reduce_kernel(  # type: ignore[no-untyped-def]
    x_ptr,
    out_ptr,
    n_rows,
    n_cols,
    x_row_stride,
    x_col_stride,
    OP: tl.constexpr,  # index into REDUCTIONS
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    SINGLE_PASS: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < n_rows
    cols = tl.arange(0, BLOCK_N)
    x_rows = x_ptr + rows[:, None] * x_row_stride
    if OP == 2 or OP == 3 or OP == 6:
        # min / max / range: NaN-aware, since tl.min / tl.max skip NaN.
        lo = tl.full((BLOCK_M,), float("inf"), tl.float32)
        hi = tl.full((BLOCK_M,), float("-inf"), tl.float32)
        nans = tl.zeros((BLOCK_M,), tl.int32)
        for start in range(0, n_cols, BLOCK_N):
            c = start + cols
            mask = row_ok[:, None] & (c[None, :] < n_cols)
            x = tl.load(x_rows + c[None, :].to(tl.int64) * x_col_stride, mask=mask, other=0.0)
            x = x.to(tl.float32)
            valid = mask & (x == x)
            nans += tl.sum((x != x).to(tl.int32), axis=1)
            if OP == 2 or OP == 6:
                lo = tl.minimum(lo, tl.min(tl.where(valid, x, float("inf")), axis=1))
            if OP == 3 or OP == 6:
                hi = tl.maximum(hi, tl.max(tl.where(valid, x, float("-inf")), axis=1))
        if OP == 2:
            result = tl.where(nans > 0, float("nan"), lo)
        elif OP == 3:
            result = tl.where(nans > 0, float("nan"), hi)
        else:
            result = tl.where(nans > 0, float("nan"), hi - lo)
    else:
        # sum / mean / std / var: per-lane partial sums across column blocks, one tree sum at
        # the end (closer to numpy's pairwise sum than a running scalar).
        if SINGLE_PASS:
            mask = row_ok[:, None] & (cols[None, :] < n_cols)
            x = tl.load(x_rows + cols[None, :].to(tl.int64) * x_col_stride, mask=mask, other=0.0)
            x = x.to(tl.float32)
            total = tl.sum(x, axis=1)
        else:
            lanes = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
            for start in range(0, n_cols, BLOCK_N):
                c = start + cols
                mask = row_ok[:, None] & (c[None, :] < n_cols)
                xc = tl.load(x_rows + c[None, :].to(tl.int64) * x_col_stride, mask=mask, other=0.0)
                lanes += xc.to(tl.float32)
            total = tl.sum(lanes, axis=1)
        # The width as a float32 vector; n_cols itself may be the constexpr 1 (Triton
        # specialises int arguments equal to 1), which has no .to().
        width = tl.zeros((BLOCK_M,), tl.float32) + n_cols
        if OP == 0:
            result = total
        else:
            mean = tl.div_rn(total, width)
            if OP == 1:
                result = mean
            else:
                if SINGLE_PASS:
                    d = tl.where(mask, x - mean[:, None], 0.0)
                    sq = tl.sum(d * d, axis=1)
                else:
                    sq_lanes = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
                    for start in range(0, n_cols, BLOCK_N):
                        c = start + cols
                        mask = row_ok[:, None] & (c[None, :] < n_cols)
                        xc = tl.load(
                            x_rows + c[None, :].to(tl.int64) * x_col_stride, mask=mask, other=0.0
                        )
                        d = tl.where(mask, xc.to(tl.float32) - mean[:, None], 0.0)
                        sq_lanes += d * d
                    sq = tl.sum(sq_lanes, axis=1)
                result = tl.div_rn(sq, width)
                if OP == 4:
                    result = tl.sqrt_rn(result)
    tl.store(out_ptr + rows, result, mask=row_ok)


def _reduce(x: torch.Tensor, op: str) -> torch.Tensor:
    name = f"row_{op}"
    x = require_tensor(x, f"{name} input")
    check_2d(x, name)
    check_kernel_float(x, name)
    check_launchable(x, f"{name} input")
    n_rows, n_cols = x.shape
    if n_cols == 0 or n_rows == 0:
        fill = 0.0 if op == "sum" else float("nan")
        return torch.full((n_rows,), fill, dtype=torch.float32, device=x.device)
    out = torch.empty((n_rows,), dtype=torch.float32, device=x.device)
    plan_row_reduce(x, out, op)()
    return out


def plan_row_reduce(x: torch.Tensor, out: torch.Tensor, op: str) -> Launch:
    """The launch that reduces each row of ``x`` (2-D, not empty) into ``out`` by ``op``
    (one of :data:`REDUCTIONS`)."""
    n_rows, n_cols = x.shape
    tile = row_tile(n_cols)
    return Launch(
        _row_reduce_kernel,
        (cdiv(n_rows, tile.block_m),),
        (x, out, n_rows, n_cols, x.stride(0), x.stride(1)),
        {
            "OP": REDUCTIONS.index(op),
            "BLOCK_M": tile.block_m,
            "BLOCK_N": tile.block_n,
            "SINGLE_PASS": tile.single_pass,
        },
        tile.num_warps,
    )


def row_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum of each row of a 2-D float32/float16/bfloat16 tensor, as float32 ``(rows,)``.

    Width-0 rows sum to 0.0; NaN propagates. One launch (none for empty input), no sync.

    Raises:
        TypeError: ``x`` is not a tensor, or not float32/float16/bfloat16.
        ValueError: ``x`` is not 2-D.
    """
    return _reduce(x, "sum")


def row_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of each row, float32; width-0 rows give NaN; NaN propagates. As :func:`row_sum`."""
    return _reduce(x, "mean")


def row_min(x: torch.Tensor) -> torch.Tensor:
    """Minimum of each row, float32; NaN anywhere in a row gives NaN. As :func:`row_sum`."""
    return _reduce(x, "min")


def row_max(x: torch.Tensor) -> torch.Tensor:
    """Maximum of each row, float32; NaN anywhere in a row gives NaN. As :func:`row_sum`."""
    return _reduce(x, "max")


def row_std(x: torch.Tensor) -> torch.Tensor:
    """Population standard deviation (ddof=0) of each row, float32, two-pass; as :func:`row_sum`.

    Width-0 rows give NaN; NaN and infinities give NaN.
    """
    return _reduce(x, "std")


def row_var(x: torch.Tensor) -> torch.Tensor:
    """Population variance (ddof=0) of each row, float32, two-pass; as :func:`row_sum`.

    Width-0 rows give NaN; NaN and infinities give NaN.
    """
    return _reduce(x, "var")


def row_range(x: torch.Tensor) -> torch.Tensor:
    """``max - min`` of each row, float32; NaN anywhere in a row gives NaN, and so does
    ``inf - inf``. As :func:`row_sum`."""
    return _reduce(x, "range")
