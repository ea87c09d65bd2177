"""pydotcompute plugin: registers the ``torch`` and ``triton`` compute backends.

Listed under the ``pydotcompute`` entry-point group. Importing it stays cheap: it imports
neither torch nor triton; the factories do, when a pipeline first asks for a backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydotcompute.stage import hookimpl

__all__ = ["pydotcompute_register_backends"]


def torch_backend() -> Any:
    """Factory of the ``torch`` backend (CUDA when available, else CPU)."""
    from ._torch_backend import TorchBackend

    return TorchBackend()


def triton_backend() -> Any:
    """Factory of the ``triton`` backend.

    Raises:
        TritonUnavailableError: triton is missing, or neither a CUDA device nor the
            interpreter is available; the message names which.
    """
    from ._triton_backend import TritonBackend

    return TritonBackend()


@hookimpl
def pydotcompute_register_backends() -> Mapping[str, Callable[[], Any]]:
    """Offer ``torch`` and ``triton``, both built lazily by their factories."""
    return {"torch": torch_backend, "triton": triton_backend}
