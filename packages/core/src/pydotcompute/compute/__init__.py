"""The compute layer: the :class:`ComputeBackend` protocol every backend satisfies, the
capabilities a backend declares, core's numpy backend (the reference), and the
conformance suite that checks a backend against it. Backend authors import from
:mod:`pydotcompute.backend`.
"""

from __future__ import annotations

from ._conformance import (
    ConformanceCase,
    conformance_cases,
)
from ._numpy import (
    NumpyBackend,
)
from ._protocol import (
    BACKEND_METHODS,
    BackendCapabilities,
    ComputeBackend,
    check_backend,
    clip_bounds,
    to_host,
)

__all__ = [
    "BACKEND_METHODS",
    "BackendCapabilities",
    "ComputeBackend",
    "ConformanceCase",
    "NumpyBackend",
    "check_backend",
    "clip_bounds",
    "conformance_cases",
    "to_host",
]
