"""The ``triton`` compute backend: pydotcompute's batch operations as Triton kernels.

Results match the numpy backend's policies (see :mod:`._torch_backend` for the readings
shared by every backend). The kernels take float32, float16 and bfloat16 and compute in
float32; integer and bool input is converted to float32 first (one conversion launch).
Float64 input, whose compute dtype is float64, runs as the torch backend's float64 ops
on the same device instead, so its results are as exact as numpy's. Row gathering,
joining, clipping and the division of ``segment_mean`` run as torch ops
(:class:`._tensor_rows.TensorRows`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy.typing as npt
import torch

from ._availability import interpreter_active, require_triton
from ._checks import KERNEL_FLOAT_DTYPES, check_2d
from ._convert import as_device_tensor, as_tensor, to_numpy
from ._tensor_rows import TensorRows, segment_means
from ._torch_backend import TorchBackend

__all__ = ["TritonBackend"]


class TritonBackend(TensorRows):
    """The ``triton`` compute backend: Triton kernels on CUDA tensors.

    With ``TRITON_INTERPRET=1`` set before ``triton`` is first imported, the same kernels
    run interpreted on CPU tensors (slowly; for tests). Methods take tensors (moved to the
    backend's device if elsewhere) or anything numpy can convert; results stay on the
    device. Launches per call are listed in :mod:`pydotcompute_triton.ops`; only
    ``segment_sum`` synchronises with the host (to validate its offsets).

    Raises (constructor):
        TritonUnavailableError: ``triton`` is not installed, or there is no CUDA device
            and the interpreter is off; the message names which.
    """

    name: str = "triton"

    def __init__(self, device: torch.device | str | None = None) -> None:
        """Compute on ``device``: default ``cpu`` under the interpreter, else ``cuda``."""
        require_triton("the 'triton' backend")
        from . import ops

        self._ops = ops
        if device is None:
            device = "cpu" if interpreter_active() else "cuda"
        self.device = torch.device(device)
        self._float64 = TorchBackend(self.device)  # float64 input: torch's float64 ops

    def __repr__(self) -> str:
        return f"TritonBackend(device={str(self.device)!r})"

    # -- conversion --------------------------------------------------------------------

    def asarray(self, data: Any, dtype: str | None = "float32") -> torch.Tensor:
        """Convert host data (numpy array, nested lists, tensor) to a tensor of ``dtype``
        (``None``: the data's own)."""
        return as_tensor(data, dtype, self.device)

    def to_numpy(self, x: Any) -> npt.NDArray[Any]:
        """Copy a tensor back to a host numpy array (bfloat16 comes back as float32)."""
        return to_numpy(x)

    def _kernel_input(self, x: Any, op: str) -> torch.Tensor:
        """``x`` as a 2-D tensor of a dtype the kernels take, on this backend's device."""
        t = as_device_tensor(x, self.device)
        check_2d(t, op)
        return t if t.dtype in KERNEL_FLOAT_DTYPES else t.to(torch.float32)

    def _reduce(self, op: str, x: Any) -> torch.Tensor:
        """Row reduction ``op`` of ``x``: its Triton kernel, or torch's float64 op for
        float64 input (the kernels compute in float32)."""
        t = as_device_tensor(x, self.device)
        if t.dtype == torch.float64:
            reduced: torch.Tensor = getattr(self._float64, op)(t)
            return reduced
        kernel_result: torch.Tensor = getattr(self._ops, op)(self._kernel_input(t, op))
        return kernel_result

    # -- operations --------------------------------------------------------------------

    def minmax_normalize(self, x: Any) -> torch.Tensor:
        """Row-wise min-max normalise a 2-D tensor: one launch (policy: ``pydotcompute``).

        Floating dtypes are kept; integer and bool input gives float32.

        Raises:
            ValueError: ``x`` is not 2-D.
        """
        t = as_device_tensor(x, self.device)
        if t.dtype == torch.float64:
            return self._float64.minmax_normalize(t)
        out = self._ops.minmax_normalize(self._kernel_input(t, "minmax_normalize"))
        if t.dtype.is_floating_point and out.dtype != t.dtype:
            return out.to(t.dtype)
        return out

    def row_sum(self, x: Any) -> torch.Tensor:
        """Sum of each row in the compute dtype; width-0 rows give 0.0; NaN propagates."""
        return self._reduce("row_sum", x)

    def row_mean(self, x: Any) -> torch.Tensor:
        """Mean of each row in the compute dtype; width-0 rows give NaN; NaN propagates."""
        return self._reduce("row_mean", x)

    def row_min(self, x: Any) -> torch.Tensor:
        """Minimum of each row in the compute dtype; width-0 rows and rows with NaN give NaN."""
        return self._reduce("row_min", x)

    def row_max(self, x: Any) -> torch.Tensor:
        """Maximum of each row in the compute dtype; width-0 rows and rows with NaN give NaN."""
        return self._reduce("row_max", x)

    def row_std(self, x: Any) -> torch.Tensor:
        """Population standard deviation of each row in the compute dtype; width 0 gives NaN."""
        return self._reduce("row_std", x)

    def row_var(self, x: Any) -> torch.Tensor:
        """Population variance of each row in the compute dtype; width 0 gives NaN."""
        return self._reduce("row_var", x)

    def row_range(self, x: Any) -> torch.Tensor:
        """``max - min`` of each row in the compute dtype; width-0 rows and rows with NaN
        give NaN."""
        return self._reduce("row_range", x)

    # -- fusion ------------------------------------------------------------------------

    def fuse_ops(self, ops: Sequence[tuple[Any, ...]]) -> Callable[[Any], Any] | None:
        """One call for a fused chain's operations (``fused_op`` of each member), or None.

        Fuses ``minmax_normalize`` followed by ``row_stats`` (a ``compute`` stage): the
        rows are read once, normalised in registers and reduced, one launch
        (:func:`~pydotcompute_triton.ops.normalize_stats`); results equal the two stages'
        bit for bit. Input the kernel does not take (float64, integers, rows wider than
        4,096) runs as the two stages' own operations.
        """
        from .ops.row_reduce import REDUCTIONS

        if len(ops) != 2 or ops[0] != ("minmax_normalize",) or not isinstance(ops[1], tuple):
            return None
        kind, *stats = ops[1]
        if kind != "row_stats" or not stats or any(s not in REDUCTIONS for s in stats):
            return None
        return functools.partial(self._normalize_stats, tuple(stats))

    def _normalize_stats(self, stats: tuple[str, ...], values: Any) -> torch.Tensor:
        from .ops.normalize_stats import FUSED_MAX_WIDTH

        t = as_device_tensor(values, self.device)
        if t.dim() == 2 and t.dtype in KERNEL_FLOAT_DTYPES and 1 <= t.shape[1] <= FUSED_MAX_WIDTH:
            return self._ops.normalize_stats(t, stats)
        normalized = self.minmax_normalize(t)  # what the two stages do apart
        return self.stack_columns([getattr(self, f"row_{s}")(normalized) for s in stats])

    def segment_sum(self, x: Any, offsets: Any) -> torch.Tensor:
        """Sum the rows of each segment ``offsets[i]:offsets[i+1]``: ``(k, width)``, float64
        for float64 input, else float32.

        Validates ``offsets`` (one host sync). Raises as the numpy backend does.
        """
        offs = as_device_tensor(offsets, self.device)
        t = as_device_tensor(x, self.device)
        if t.dtype == torch.float64:
            return self._float64.segment_sum(t, offs)
        return self._ops.segment_sum(self._kernel_input(t, "segment_sum"), offs)

    def segment_mean(self, x: Any, offsets: Any) -> torch.Tensor:
        """Mean of the rows of each segment: :meth:`segment_sum` over the row counts (one
        more launch); an empty segment gives NaN. Raises as :meth:`segment_sum`."""
        offs = as_device_tensor(offsets, self.device)
        return segment_means(self.segment_sum(x, offs), offs)

    def partition(self, keys: Any, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stable bucketing of ``keys % n``: ``(counts, offsets, permutation)``, int64.

        Raises:
            ValueError: ``n < 1``, or ``keys`` is not 1-D.
            TypeError: ``keys`` is not an integer array, or ``n`` is not an int.
        """
        k = as_device_tensor(keys, self.device)
        if k.numel() == 0 and k.dim() == 1:
            k = k.to(torch.int64)
        return self._ops.partition(k, n)
