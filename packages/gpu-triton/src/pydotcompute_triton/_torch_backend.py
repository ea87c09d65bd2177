"""The ``torch`` compute backend: eager torch ops on any device, numpy's policies exactly.

Same readings of the policies as pydotcompute's numpy backend: arithmetic runs in the
compute dtype (float64 for float64 input, float32 for every other dtype);
``minmax_normalize`` and ``clip`` keep floating dtypes (float16/bfloat16 computed in
float32 and cast back) and return float32 for integer and bool input; reductions and
``segment_sum`` accumulate in and return the compute dtype (``torch.amin``/``amax``
propagate NaN, which is
the reduction policy; ``minmax_normalize`` masks NaN out itself); ``partition`` returns
``offsets`` of length ``n + 1``. The conformance suite of ``pydotcompute.backend``
checks all of it.
"""

from __future__ import annotations

from typing import Any

import numpy.typing as npt
import torch

from ._checks import (
    check_2d,
    check_keys,
    check_n,
    check_offsets_shape,
    check_offsets_values,
    keys_for_modulo,
)
from ._convert import as_device_tensor, as_tensor, to_numpy
from ._tensor_rows import TensorRows, compute_dtype, segment_means

__all__ = ["TorchBackend"]


def default_device() -> torch.device:
    """``cuda`` when torch sees a CUDA device, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TorchBackend(TensorRows):
    """The ``torch`` compute backend: tensors on one device, float32 arithmetic (float64
    for float64 input).

    Methods take tensors (moved to the backend's device if elsewhere) or anything numpy
    can convert; 2-D operations raise ``ValueError`` naming the shape otherwise. Results
    stay on the device. Stateless apart from the device; safe to share.
    """

    name: str = "torch"

    def __init__(self, device: torch.device | str | None = None) -> None:
        """Compute on ``device`` (default: ``cuda`` when available, else ``cpu``)."""
        self.device = torch.device(device) if device is not None else default_device()

    def __repr__(self) -> str:
        return f"TorchBackend(device={str(self.device)!r})"

    # -- conversion --------------------------------------------------------------------

    def asarray(self, data: Any, dtype: str | None = "float32") -> torch.Tensor:
        """Convert host data (numpy array, nested lists, tensor) to a tensor of ``dtype``
        (``None``: the data's own)."""
        return as_tensor(data, dtype, self.device)

    def to_numpy(self, x: Any) -> npt.NDArray[Any]:
        """Copy a tensor back to a host numpy array (bfloat16 comes back as float32)."""
        return to_numpy(x)

    def _tensor(self, x: Any) -> torch.Tensor:
        """``x`` on this backend's device, keeping its dtype (tensors are not copied)."""
        return as_device_tensor(x, self.device)

    def _compute_2d(self, x: Any, op: str) -> torch.Tensor:
        """``x`` as a 2-D tensor of its compute dtype on this device."""
        t = self._tensor(x)
        check_2d(t, op)
        return t.to(compute_dtype(t.dtype))

    def _nan_rows(self, like: torch.Tensor) -> torch.Tensor:
        """A NaN per row of ``like``, in its dtype: what a reduction of width 0 gives."""
        return torch.full((like.shape[0],), torch.nan, dtype=like.dtype, device=self.device)

    # -- element-wise ------------------------------------------------------------------

    def minmax_normalize(self, x: Any) -> torch.Tensor:
        """Row-wise min-max normalise a 2-D tensor into a new one (policy: module docstring).

        Raises:
            ValueError: ``x`` is not 2-D.
        """
        t = self._tensor(x)
        check_2d(t, "minmax_normalize")
        out_dtype = t.dtype if t.dtype.is_floating_point else torch.float32
        rows, width = t.shape
        if rows == 0 or width == 0:
            return torch.empty((rows, width), dtype=out_dtype, device=self.device)
        xc = t.to(compute_dtype(t.dtype))
        nan = torch.isnan(xc)
        lo = torch.where(nan, torch.inf, xc).amin(dim=1, keepdim=True)
        hi = torch.where(nan, -torch.inf, xc).amax(dim=1, keepdim=True)
        span = hi - lo  # NaN for inf - inf, -inf for all-NaN rows
        good = span > 0
        out = (xc - lo) / torch.where(good, span, 1.0)
        out = torch.where(good, out, 0.0)
        out = torch.where(nan, xc, out)
        return out.to(out_dtype)

    # -- row reductions ----------------------------------------------------------------

    def row_sum(self, x: Any) -> torch.Tensor:
        """Sum of each row, in the compute dtype; width-0 rows give 0.0; NaN propagates."""
        return self._compute_2d(x, "row_sum").sum(dim=1)

    def row_mean(self, x: Any) -> torch.Tensor:
        """Mean of each row, in the compute dtype; width-0 rows give NaN; NaN propagates."""
        xc = self._compute_2d(x, "row_mean")
        if xc.shape[1] == 0:
            return self._nan_rows(xc)
        return xc.sum(dim=1) / xc.shape[1]

    def row_min(self, x: Any) -> torch.Tensor:
        """Minimum of each row, in the compute dtype; width-0 rows and rows with NaN give NaN."""
        xc = self._compute_2d(x, "row_min")
        if xc.shape[1] == 0 or xc.shape[0] == 0:
            return self._nan_rows(xc)
        return xc.amin(dim=1)

    def row_max(self, x: Any) -> torch.Tensor:
        """Maximum of each row, in the compute dtype; width-0 rows and rows with NaN give NaN."""
        xc = self._compute_2d(x, "row_max")
        if xc.shape[1] == 0 or xc.shape[0] == 0:
            return self._nan_rows(xc)
        return xc.amax(dim=1)

    def row_range(self, x: Any) -> torch.Tensor:
        """``max - min`` of each row, in the compute dtype; width-0 rows, rows with NaN and
        ``inf - inf`` give NaN."""
        xc = self._compute_2d(x, "row_range")
        if xc.shape[1] == 0 or xc.shape[0] == 0:
            return self._nan_rows(xc)
        return xc.amax(dim=1) - xc.amin(dim=1)

    def row_var(self, x: Any) -> torch.Tensor:
        """Population variance of each row, in the compute dtype, two-pass; width 0 gives NaN."""
        return self._row_var(self._compute_2d(x, "row_var"))

    def row_std(self, x: Any) -> torch.Tensor:
        """Population standard deviation of each row, in the compute dtype, two-pass;
        width 0 gives NaN."""
        return torch.sqrt(self._row_var(self._compute_2d(x, "row_std")))

    def _row_var(self, xc: torch.Tensor) -> torch.Tensor:
        width = xc.shape[1]
        if width == 0:
            return self._nan_rows(xc)
        mean = xc.sum(dim=1, keepdim=True) / width
        dev = xc - mean
        return (dev * dev).sum(dim=1) / width

    # -- segments and partitions ------------------------------------------------------

    def segment_sum(self, x: Any, offsets: Any) -> torch.Tensor:
        """Sum the rows of each segment ``offsets[i]:offsets[i+1]``: ``(k, width)`` in the
        compute dtype.

        ``offsets`` has ``k + 1`` non-decreasing integer entries within ``[0, len(x)]``;
        rows outside ``offsets[0]:offsets[-1]`` are ignored; empty segments sum to zeros.
        Synchronises with the host (validation and slicing read the offsets).

        Raises:
            ValueError: ``x`` is not 2-D, or ``offsets`` is not a non-empty 1-D
                non-decreasing integer sequence within ``[0, len(x)]``.
        """
        xc = self._compute_2d(x, "segment_sum")
        offs = self._tensor(offsets)
        check_offsets_shape(offs)
        rows, width = xc.shape
        check_offsets_values(offs, rows)
        offs = offs.to(torch.int64)
        k = offs.numel() - 1
        out = torch.zeros((k, width), dtype=xc.dtype, device=self.device)
        if k == 0 or width == 0:
            return out
        lengths = offs[1:] - offs[:-1]
        first, last = (int(v) for v in offs[[0, -1]].tolist())
        segment_of_row = torch.repeat_interleave(
            torch.arange(k, device=self.device), lengths, output_size=last - first
        )
        return out.index_add_(0, segment_of_row, xc[first:last])

    def segment_mean(self, x: Any, offsets: Any) -> torch.Tensor:
        """Mean of the rows of each segment: :meth:`segment_sum` over the row counts; an
        empty segment gives NaN. Raises as :meth:`segment_sum`."""
        return segment_means(self.segment_sum(x, offsets), self._tensor(offsets))

    def partition(self, keys: Any, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stable bucketing of ``keys % n`` (Python modulo): ``(counts, offsets, permutation)``.

        All int64 on the backend's device; ``offsets`` has ``n + 1`` entries starting at 0.

        Raises:
            ValueError: ``n < 1``, or ``keys`` is not 1-D.
            TypeError: ``keys`` is not an integer array, or ``n`` is not an int.
        """
        n = check_n(n)
        k = self._tensor(keys)
        if k.numel() == 0 and k.dim() == 1:
            k = k.to(torch.int64)
        check_keys(k)
        buckets = torch.remainder(keys_for_modulo(k, n), n)
        counts = torch.zeros((n,), dtype=torch.int64, device=self.device)
        counts.scatter_add_(0, buckets, torch.ones_like(buckets))
        offsets = torch.zeros((n + 1,), dtype=torch.int64, device=self.device)
        torch.cumsum(counts, 0, out=offsets[1:])
        permutation = torch.sort(buckets, stable=True).indices
        return counts, offsets, permutation
