"""What the torch and Triton backends share, as eager torch ops: joining batches, stacking
result columns, gathering rows, clipping, segment means, and device rings for a
pipeline's stage-to-stage traffic (the ``device_rings`` capability).

With these, records stay on the device from stage to stage. The Triton backend runs
them as torch ops too: each is one or two launches of torch's own kernels, and none
needs a kernel of this package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy.typing as npt
import torch
from pydotcompute import BackpressureStrategy
from pydotcompute.backend import BackendCapabilities, NumpyBackend, clip_bounds
from pydotcompute.errors import InvalidArgumentError

from ._checks import check_2d, check_index
from ._convert import as_device_tensor, to_numpy

__all__ = ["TensorRows", "compute_dtype", "segment_means"]

_HOST: Final = NumpyBackend()


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype arithmetic on ``dtype`` input runs in: float64 for float64, else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def segment_means(sums: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """``sums`` (``segment_sum``'s result) divided by each segment's row count,
    ``offsets`` being the validated offsets it was computed with; an empty segment gives
    NaN (``0 / 0``)."""
    offs = offsets.to(device=sums.device, dtype=torch.int64)
    lengths = (offs[1:] - offs[:-1]).to(sums.dtype)
    return sums / lengths[:, None]


def _host_rows(x: Any, index: Any) -> npt.NDArray[Any]:
    """``take_rows`` for rows on the host: numpy in, numpy out (the index comes over), by
    the numpy backend's own rules."""
    rows: npt.NDArray[Any] = _HOST.take_rows(x, to_numpy(index))
    return rows


def _same_device(a: torch.device, b: torch.device) -> bool:
    """Whether ``a`` and ``b`` name one device (``cuda`` is the current CUDA device)."""
    if a.type != b.type:
        return False
    index_a: int | None = a.index
    index_b: int | None = b.index
    if index_a == index_b:
        return True
    if a.type != "cuda":
        return index_a is None or index_b is None
    current = torch.cuda.current_device()
    return (current if index_a is None else index_a) == (current if index_b is None else index_b)


class TensorRows:
    """Mixed into a backend whose arrays are torch tensors on ``self.device``."""

    device: torch.device

    def to_numpy(self, x: Any) -> npt.NDArray[Any]:
        """A tensor as a host numpy array (the backends define it)."""
        raise NotImplementedError

    capabilities: BackendCapabilities = BackendCapabilities(device_rings=True)

    def concat_rows(self, parts: Sequence[Any]) -> torch.Tensor:
        """The rows of ``parts`` (2-D, equal widths) one after another, on the device.

        Raises:
            ValueError: ``parts`` is empty.
        """
        if not parts:
            raise InvalidArgumentError("concat_rows needs at least one array")
        tensors = [as_device_tensor(p, self.device) for p in parts]
        return tensors[0] if len(tensors) == 1 else torch.cat(tensors)

    def stack_columns(self, columns: Sequence[Any]) -> torch.Tensor:
        """1-D arrays of equal length as the columns of a 2-D tensor: float64 when a
        column is float64 (the statistics of float64 rows), else float32.

        Raises:
            ValueError: ``columns`` is empty.
        """
        if not columns:
            raise InvalidArgumentError("stack_columns needs at least one column")
        tensors = [as_device_tensor(c, self.device) for c in columns]
        wide = any(t.dtype == torch.float64 for t in tensors)
        dtype = torch.float64 if wide else torch.float32
        return torch.stack([t.to(dtype) for t in tensors], dim=1)

    def take_rows(self, x: Any, index: Any) -> Any:
        """The rows of ``x`` at ``index`` (1-D integers, a tensor or host data), in order.

        Rows stay where they are: a tensor gives a tensor on its device, host rows (a
        numpy array) a numpy array.

        Raises:
            ValueError: ``x`` is not 2-D, or ``index`` is not 1-D.
            TypeError: ``index`` is not integers.
        """
        if not isinstance(x, torch.Tensor):
            return _host_rows(x, index)
        check_2d(x, "take_rows")
        return x[check_index(as_device_tensor(index, x.device))]

    def clip(self, x: Any, low: float, high: float) -> torch.Tensor:
        """Each element of ``x`` (any shape) limited to ``[low, high]``, as a new tensor.

        Floating dtypes are kept, the bounds rounded to them (a bound beyond float16's
        range becomes an infinity); integer and bool input comes back float32. NaN
        stays NaN.

        Raises:
            ValueError: a bound is NaN, or ``low > high``.
        """
        lo, hi = clip_bounds(low, high)
        t = as_device_tensor(x, self.device)
        if not t.dtype.is_floating_point:
            t = t.to(torch.float32)
        # Bounds as tensors of t's dtype: torch refuses a Python bound that overflows it.
        bounds = torch.tensor([lo, hi], dtype=t.dtype, device=t.device)
        return torch.clamp(t, bounds[0], bounds[1])

    async def to_numpy_async(self, x: Any) -> npt.NDArray[Any]:
        """``x`` as a host numpy array without blocking the event loop: a CUDA tensor
        through pinned memory and a CUDA event polled from asyncio, anything else at once
        (see :mod:`._host_copy`). A stage whose results leave for the host awaits this.

        Raises:
            DeviceFaultError: the device failed before or during the copy.
        """
        from ._host_copy import to_numpy_async

        if not isinstance(x, torch.Tensor) or x.device.type != "cuda":
            return self.to_numpy(x)  # at once: the backend's own conversion
        return await to_numpy_async(x)

    def device_fault(self, exc: BaseException) -> Any:
        """``exc`` as a ``DeviceFaultError`` when it is this device's fault (a CUDA
        error), else None: a stage that meets one ends its worker and fails the run."""
        from ._host_copy import device_fault

        return device_fault(exc, self.device)

    def make_ring(self, capacity: int, like: Any, backpressure: BackpressureStrategy | str) -> Any:
        """A :class:`~pydotcompute_triton.DeviceRing` for rows like ``like`` (its width
        and dtype), or None when ``like`` is not a tensor on this backend's device, the
        ring cannot store its dtype, or Triton kernels cannot run on that device."""
        from ._availability import triton_device, triton_unavailable_reason
        from ._device_ring import RING_DTYPES, DeviceRing

        if (
            not isinstance(like, torch.Tensor)
            or like.dim() != 2
            or like.shape[1] < 1
            or like.dtype not in RING_DTYPES
            or not _same_device(like.device, self.device)
            or triton_unavailable_reason() is not None
            or like.device.type != triton_device().type
        ):
            return None
        return DeviceRing(
            capacity, like.shape[1], like.dtype, like.device, backpressure=backpressure
        )
