"""Host <-> tensor conversion shared by the torch and Triton backends."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from pydotcompute.errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["as_device_tensor", "as_tensor", "to_numpy", "torch_dtype"]


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype called ``name`` (``"float32"``, ``"bfloat16"``, ``"int64"``...).

    Raises:
        ValueError: ``name`` names no torch dtype.
    """
    dtype = getattr(torch, name, None) if isinstance(name, str) else None
    if not isinstance(dtype, torch.dtype):
        raise InvalidArgumentError(
            f"asarray dtype must name a torch dtype such as 'float32'; got {name!r}"
        )
    return dtype


def as_tensor(data: Any, dtype: str | None, device: torch.device) -> torch.Tensor:
    """Convert host data (numpy array, nested lists, a tensor) to a tensor on ``device``
    of ``dtype`` (``None``: the data's own dtype, as numpy reads it).

    Data numpy cannot hold in ``dtype`` (bfloat16) goes through float32 first. No copy is
    made when ``data`` already is a tensor of that dtype on that device.
    """
    if dtype is None:
        return as_device_tensor(data, device)
    target = torch_dtype(dtype)
    if isinstance(data, torch.Tensor):
        return data.to(device=device, dtype=target)
    try:
        host = np.asarray(data, dtype=np.dtype(dtype))
    except TypeError:  # numpy has no such dtype (bfloat16): convert through float32
        host = np.asarray(data, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(host)).to(device=device, dtype=target)


def as_device_tensor(x: Any, device: torch.device) -> torch.Tensor:
    """``x`` as a tensor on ``device`` keeping its dtype; a tensor already there is returned.

    Raises:
        TypeError: numpy converts ``x`` to a dtype torch has no equivalent of (strings,
            objects).
    """
    if isinstance(x, torch.Tensor):
        return x.to(device)
    host = np.ascontiguousarray(np.asarray(x))
    try:
        return torch.from_numpy(host).to(device)
    except TypeError as exc:
        raise ArgumentTypeError(
            f"cannot make a tensor of {type(x).__name__} with dtype {host.dtype}"
        ) from exc


def to_numpy(x: Any) -> npt.NDArray[Any]:
    """Copy a tensor to a host numpy array (bfloat16 becomes float32, numpy has none)."""
    if not isinstance(x, torch.Tensor):
        return np.asarray(x)
    t = x.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.to(torch.float32)
    out: npt.NDArray[Any] = t.numpy()
    return out
