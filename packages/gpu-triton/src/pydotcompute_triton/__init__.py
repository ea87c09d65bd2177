"""Torch and Triton compute backends, and a device-resident ring, for pydotcompute.

* :class:`TorchBackend` (``"torch"``) runs pydotcompute's batch operations as eager torch
  ops on any device; :class:`TritonBackend` (``"triton"``) runs them as the Triton
  kernels of :mod:`pydotcompute_triton.ops`. Both follow the numpy backend's policies.
* :class:`DeviceRing` is a bounded FIFO of fixed-width records whose counters live on
  the device: one kernel launch per push or pop.

Importing this package is cheap and works without ``triton``: names are loaded on first
use, and only the Triton pieces need ``triton`` (they raise
:class:`TritonUnavailableError` naming what is missing).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._availability import triton_unavailable_reason
    from ._device_ring import DeviceRing, DeviceRingStatistics
    from ._errors import TritonUnavailableError
    from ._graph import CapturedStep
    from ._torch_backend import TorchBackend
    from ._triton_backend import TritonBackend

__version__ = "0.1.0"

__all__ = [
    "CapturedStep",
    "DeviceRing",
    "DeviceRingStatistics",
    "TorchBackend",
    "TritonBackend",
    "TritonUnavailableError",
    "triton_unavailable_reason",
]

# Public name -> private module that defines it; loaded on first access (PEP 562), so
# that the plugin entry point can import this package without importing torch.
_EXPORTS = {
    "CapturedStep": "._graph",
    "DeviceRing": "._device_ring",
    "DeviceRingStatistics": "._device_ring",
    "TorchBackend": "._torch_backend",
    "TritonBackend": "._triton_backend",
    "TritonUnavailableError": "._errors",
    "triton_unavailable_reason": "._availability",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
