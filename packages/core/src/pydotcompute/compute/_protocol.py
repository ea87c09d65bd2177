"""The compute backend interface: the batch operations that stages run.

A backend computes on whole batches (2-D arrays of records, one row each). Core ships
the numpy backend; ``pydotcompute-triton`` adds ``torch`` and ``triton`` behind the
same interface. Every backend follows the same numeric policies, so results match
across backends:

* ``minmax_normalize``: per row, ``lo``/``hi`` are the min/max over the row's non-NaN
  entries (infinities count). Where ``hi - lo > 0`` the result is
  ``(x - lo) / (hi - lo)``; elsewhere (constant rows, all-NaN rows, a NaN range) it is
  ``0.0``. A NaN input stays NaN in the output. Output dtype equals input dtype;
  arithmetic is float32.
* Row reductions (``row_mean``, ``row_sum``, ``row_min``, ``row_max``, ``row_std``)
  return float32, accumulate in float32, and propagate NaN. A row of width 0 gives NaN
  (``row_sum`` gives 0.0). ``row_std`` is the population standard deviation (ddof=0).
* ``segment_sum(x, offsets)``: row ``i`` of the result sums rows
  ``offsets[i]:offsets[i+1]`` of ``x``; an empty segment sums to zeros.
* ``partition(keys, n)``: bucket ``keys % n`` (Python modulo, so always in ``[0, n)``),
  stable within a bucket. Returns ``(counts, offsets, permutation)`` as int64.

Optional methods, which the built-in stages use when a backend has them (and otherwise
do the same on the host, through ``to_numpy``):

* ``concat_rows(parts)``: 2-D arrays of one width, their rows one after another.
* ``stack_columns(columns)``: equal-length 1-D arrays as the float32 columns of a
  2-D array.
* ``make_ring(capacity, like, backpressure)``: a bounded FIFO of rows like ``like``
  on the backend's device (see :class:`pydotcompute.backend.DeviceQueue`), or
  None when it cannot hold them. With it, batches between two stages on this backend
  travel through device rings instead of the host queues.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["ComputeBackend", "to_host"]


@runtime_checkable
class ComputeBackend(Protocol):
    """What a stage needs from a backend. Arrays are the backend's native type."""

    name: str

    def asarray(self, data: Any, dtype: str = "float32") -> Any:
        """Convert host data (numpy array, nested lists) to a native 2-D or 1-D array."""
        ...

    def to_numpy(self, x: Any) -> Any:
        """Copy a native array back to a numpy array on the host."""
        ...

    def minmax_normalize(self, x: Any) -> Any:
        """Row-wise min-max normalize a 2-D array (policy in the module docstring)."""
        ...

    def row_mean(self, x: Any) -> Any:
        """Mean of each row of a 2-D array, float32."""
        ...

    def row_sum(self, x: Any) -> Any:
        """Sum of each row of a 2-D array, float32."""
        ...

    def row_min(self, x: Any) -> Any:
        """Minimum of each row of a 2-D array, float32, NaN propagating."""
        ...

    def row_max(self, x: Any) -> Any:
        """Maximum of each row of a 2-D array, float32, NaN propagating."""
        ...

    def row_std(self, x: Any) -> Any:
        """Population standard deviation of each row of a 2-D array, float32."""
        ...

    def segment_sum(self, x: Any, offsets: Any) -> Any:
        """Sum the rows of each segment ``offsets[i]:offsets[i+1]``; shape (k, width)."""
        ...

    def partition(self, keys: Any, n: int) -> tuple[Any, Any, Any]:
        """Stable bucketing of ``keys % n``: ``(counts, offsets, permutation)``."""
        ...


def to_host(backend: ComputeBackend, x: Any) -> npt.NDArray[Any]:
    """``x`` (a numpy array, or an array of ``backend``'s own) as a numpy array: no
    copy and no call for a numpy array, ``backend.to_numpy`` otherwise."""
    return x if type(x) is np.ndarray else np.asarray(backend.to_numpy(x))
