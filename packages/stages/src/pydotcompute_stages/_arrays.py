"""Arrays in a stage's backend: records stay where the backend computes (on its device)
from stage to stage, and come to the host only for per-message output.

A backend may offer ``concat_rows`` and ``stack_columns`` (see
``pydotcompute.backend``); without them these helpers do the same on the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._core import to_host

__all__ = ["concat_rows", "on_backend", "stack_columns"]


def on_backend(backend: Any, x: Any) -> Any:
    """``x`` in the backend's own arrays, dtype kept: a numpy array is converted (no
    copy on the numpy backend), anything else is taken to be the backend's already."""
    return backend.asarray(x, x.dtype.name) if type(x) is np.ndarray else x


def concat_rows(backend: Any, parts: Sequence[Any]) -> Any:
    """The rows of ``parts`` one after another, in the backend's arrays when it can."""
    op = getattr(backend, "concat_rows", None)
    if op is not None:
        return op(parts)
    return np.concatenate([to_host(backend, p) for p in parts])


def stack_columns(backend: Any, columns: Sequence[Any]) -> Any:
    """1-D arrays as the float32 columns of a 2-D array, in the backend's when it can."""
    op = getattr(backend, "stack_columns", None)
    if op is not None:
        return op(columns)
    return np.stack([to_host(backend, c).astype(np.float32, copy=False) for c in columns], axis=1)
