"""The compute layer: the :class:`ComputeBackend` protocol every backend satisfies, and core's
numpy backend. Backend authors import from :mod:`pydotcompute.backend`.
"""

from __future__ import annotations

from ._numpy import (
    NumpyBackend,
)
from ._protocol import (
    ComputeBackend,
    to_host,
)

__all__ = [
    "ComputeBackend",
    "NumpyBackend",
    "to_host",
]
