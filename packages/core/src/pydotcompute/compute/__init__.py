"""The compute layer: the :class:`ComputeBackend` protocol every backend satisfies, the
capabilities a backend declares, core's numpy backend (the reference), and the
conformance suite that checks a backend against it. Backend authors import from
:mod:`pydotcompute.backend`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from ._conformance import ConformanceCase, conformance_cases

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


def __getattr__(name: str) -> Any:
    # The conformance suite is for backends' tests: a pipeline run never imports it.
    if name in ("ConformanceCase", "conformance_cases"):
        from . import _conformance

        return getattr(_conformance, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
