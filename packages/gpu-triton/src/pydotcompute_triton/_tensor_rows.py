"""Row plumbing the torch and Triton backends share: joining batches, stacking result
columns, and device rings for a pipeline's stage-to-stage traffic.

These are the optional operations of pydotcompute's backend interface (see
``pydotcompute.backend``): with them, records stay on the device from stage to stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from pydotcompute import BackpressureStrategy

from ._convert import as_device_tensor

__all__ = ["TensorRows"]


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

    def concat_rows(self, parts: Sequence[Any]) -> torch.Tensor:
        """The rows of ``parts`` (2-D, equal widths) one after another, on the device.

        Raises:
            ValueError: ``parts`` is empty.
        """
        if not parts:
            raise ValueError("concat_rows needs at least one array")
        tensors = [as_device_tensor(p, self.device) for p in parts]
        return tensors[0] if len(tensors) == 1 else torch.cat(tensors)

    def stack_columns(self, columns: Sequence[Any]) -> torch.Tensor:
        """1-D arrays of equal length as the float32 columns of a 2-D tensor.

        Raises:
            ValueError: ``columns`` is empty.
        """
        if not columns:
            raise ValueError("stack_columns needs at least one column")
        return torch.stack(
            [as_device_tensor(c, self.device).to(torch.float32) for c in columns], dim=1
        )

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
