"""The compute backend interface: the array operations that stages run, and what a backend
declares it can do beyond them.

A backend computes on whole batches (2-D arrays of records, one row each) in its own
*native* arrays (numpy arrays for core's numpy backend; torch tensors on a device for
``pydotcompute-triton``'s). Every operation takes host data (numpy arrays, lists) or the
backend's native arrays and returns native arrays, never modifying its inputs. Stages
touch native arrays only through the backend, plus the minimum any array library offers:
``.shape``, ``.dtype``, ``len()`` and basic row slicing ``x[a:b]``.

Every backend follows the same numeric policies, so results match across backends; the
conformance suite (:func:`conformance_cases`) checks a backend against them:

* The compute dtype: arithmetic on float64 input runs in float64, on every other
  dtype in float32 (float16 and bfloat16 are computed in float32), so a float64
  pipeline loses nothing to the backend.

* ``minmax_normalize``: per row, ``lo``/``hi`` are the min/max over the row's non-NaN
  entries (infinities count). Where ``hi - lo > 0`` the result is
  ``(x - lo) / (hi - lo)``; elsewhere (constant rows, all-NaN rows, a NaN range) it is
  ``0.0``. A NaN input stays NaN in the output. Floating inputs keep their dtype
  (arithmetic in the compute dtype); integer and bool inputs come back float32.
* ``clip(x, low, high)``: each element limited to ``[low, high]`` in ``x``'s dtype (the
  bounds rounded to it), NaN stays NaN; dtypes as ``minmax_normalize``. ``low > high``
  or a NaN bound raises ``ValueError``.
* Row reductions (``row_sum``, ``row_mean``, ``row_min``, ``row_max``, ``row_std``,
  ``row_var``, ``row_range``) accumulate in and return the compute dtype, and propagate NaN.
  A row of width 0 gives NaN (``row_sum`` gives 0.0). ``row_var`` is the population
  variance (two-pass: the mean squared deviation from the mean), ``row_std`` its square
  root; ``row_range`` is ``row_max - row_min`` (``inf - inf`` is NaN).
* ``segment_sum(x, offsets)``: row ``i`` of the result sums rows
  ``offsets[i]:offsets[i+1]`` of ``x``; an empty segment sums to zeros.
  ``segment_sum`` accumulates in and returns the compute dtype, and
  ``segment_mean`` divides each segment's sum by its row count (an empty
  segment gives NaN).
* ``partition(keys, n)``: bucket ``keys % n`` (Python modulo, so always in ``[0, n)``),
  stable within a bucket. Returns ``(counts, offsets, permutation)`` as int64, with
  ``len(offsets) == n + 1``, the convention ``segment_sum`` takes.
* ``take_rows(x, index)``: the rows of ``x`` at ``index`` (1-D integers, host or
  native), in order. Rows stay where they are: a host (numpy) ``x`` gives a numpy
  array, a native one a native array.
* Errors: a 2-D operation given anything else raises ``ValueError`` naming the
  operation; bad offsets or ``n`` raise ``ValueError``; non-integer keys or offsets, and
  a non-int ``n``, ``TypeError`` (offsets: ``ValueError``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..errors import BackendProtocolError, InvalidArgumentError

__all__ = [
    "BACKEND_METHODS",
    "BackendCapabilities",
    "ComputeBackend",
    "check_backend",
    "clip_bounds",
    "to_host",
]


@dataclasses.dataclass(frozen=True)
class BackendCapabilities:
    """What a backend offers beyond the operations every backend has.

    Every field defaults to the plain case, so a backend that declares nothing is a
    correct, host-only backend; a feature added later joins as a new field with a
    default, and existing backends keep working.
    """

    #: The backend has ``make_ring(capacity, like, backpressure)``: a bounded FIFO of
    #: rows like the native 2-D array ``like`` on its device (a
    #: :class:`pydotcompute.backend.DeviceQueue`), or None when it cannot hold such rows.
    #: Pipelines then pass batches between two stages on this backend through device
    #: rings instead of host queues.
    device_rings: bool = False


@runtime_checkable
class ComputeBackend(Protocol):
    """What a stage needs from a backend (policies in this module's docstring).

    Arrays in and out are the backend's native type; every method also accepts host
    data. ``capabilities`` declares the optional features; nothing probes for methods.
    """

    name: str
    capabilities: BackendCapabilities

    # -- conversion ------------------------------------------------------------------------

    def asarray(self, data: Any, dtype: str | None = "float32") -> Any:
        """Host data (numpy array, nested lists) or a native array as a native array of
        ``dtype`` (a numpy dtype name); ``None`` keeps the data's own dtype. No copy when
        ``data`` already is a native array of that dtype."""
        ...

    def to_numpy(self, x: Any) -> Any:
        """A native array as a host numpy array (a dtype numpy lacks, such as bfloat16,
        comes back as float32)."""
        ...

    # -- rows ------------------------------------------------------------------------------

    def concat_rows(self, parts: Sequence[Any]) -> Any:
        """The rows of ``parts`` (2-D, one width and dtype) one after another.
        Raises ``ValueError`` for no parts."""
        ...

    def stack_columns(self, columns: Sequence[Any]) -> Any:
        """Equal-length 1-D arrays as the columns of a 2-D array (float64 when a column
        is float64, else float32).
        Raises ``ValueError`` for no columns."""
        ...

    def take_rows(self, x: Any, index: Any) -> Any:
        """The rows of ``x`` at ``index``, where ``x`` lives (see the module docstring)."""
        ...

    # -- element-wise ----------------------------------------------------------------------

    def minmax_normalize(self, x: Any) -> Any:
        """Row-wise min-max normalize a 2-D array."""
        ...

    def clip(self, x: Any, low: float, high: float) -> Any:
        """Each element of ``x`` (any shape) limited to ``[low, high]``; the bounds are
        checked by :func:`clip_bounds`."""
        ...

    # -- row reductions --------------------------------------------------------------------

    def row_sum(self, x: Any) -> Any:
        """Sum of each row of a 2-D array, in the compute dtype."""
        ...

    def row_mean(self, x: Any) -> Any:
        """Mean of each row of a 2-D array, in the compute dtype."""
        ...

    def row_min(self, x: Any) -> Any:
        """Minimum of each row of a 2-D array, in the compute dtype, NaN propagating."""
        ...

    def row_max(self, x: Any) -> Any:
        """Maximum of each row of a 2-D array, in the compute dtype, NaN propagating."""
        ...

    def row_std(self, x: Any) -> Any:
        """Population standard deviation of each row of a 2-D array, in the compute dtype."""
        ...

    def row_var(self, x: Any) -> Any:
        """Population variance of each row of a 2-D array, in the compute dtype."""
        ...

    def row_range(self, x: Any) -> Any:
        """``max - min`` of each row of a 2-D array, in the compute dtype."""
        ...

    # -- segments and partitions -----------------------------------------------------------

    def segment_sum(self, x: Any, offsets: Any) -> Any:
        """Sum the rows of each segment ``offsets[i]:offsets[i+1]``; shape (k, width)."""
        ...

    def segment_mean(self, x: Any, offsets: Any) -> Any:
        """Mean of the rows of each segment; an empty segment gives NaN."""
        ...

    def partition(self, keys: Any, n: int) -> tuple[Any, Any, Any]:
        """Stable bucketing of ``keys % n``: ``(counts, offsets, permutation)``."""
        ...


#: The methods every backend has, in the order the protocol lists them.
BACKEND_METHODS: Final = (
    "asarray",
    "to_numpy",
    "concat_rows",
    "stack_columns",
    "take_rows",
    "minmax_normalize",
    "clip",
    "row_sum",
    "row_mean",
    "row_min",
    "row_max",
    "row_std",
    "row_var",
    "row_range",
    "segment_sum",
    "segment_mean",
    "partition",
)


def check_backend(backend: object, name: str | None = None) -> ComputeBackend:
    """Return ``backend`` if it satisfies :class:`ComputeBackend`.

    ``name`` is what the backend is registered as, for the message (its own ``name``
    attribute otherwise).

    Raises:
        BackendProtocolError: a method is missing or not callable, ``name`` is not a
            non-empty str, ``capabilities`` is not a :class:`BackendCapabilities`, or
            it declares ``device_rings`` without a callable ``make_ring``. The message
            names the backend and lists every problem.
    """
    problems = [
        f"method {method!r} is missing"
        if not hasattr(backend, method)
        else f"{method!r} is not callable"
        for method in BACKEND_METHODS
        if not callable(getattr(backend, method, None))
    ]
    own_name = getattr(backend, "name", None)
    if not isinstance(own_name, str) or not own_name:
        problems.append(f"'name' must be a non-empty str; got {own_name!r}")
    capabilities = getattr(backend, "capabilities", None)
    if not isinstance(capabilities, BackendCapabilities):
        problems.append(
            "'capabilities' must be a pydotcompute.backend.BackendCapabilities; "
            f"got {type(capabilities).__name__}"
        )
    elif capabilities.device_rings and not callable(getattr(backend, "make_ring", None)):
        problems.append("capabilities.device_rings is True but there is no callable 'make_ring'")
    if problems:
        label = name if name is not None else own_name if isinstance(own_name, str) else None
        raise BackendProtocolError(
            f"backend {label!r} ({type(backend).__module__}.{type(backend).__qualname__}) "
            f"does not satisfy pydotcompute.backend.ComputeBackend: {'; '.join(problems)}"
        )
    return backend  # type: ignore[return-value]  # checked member by member above


def clip_bounds(low: float, high: float) -> tuple[float, float]:
    """``(low, high)`` as floats, the bounds every backend's ``clip`` checks alike.

    Raises:
        InvalidArgumentError: a bound is NaN, or ``low > high``.
    """
    lo, hi = float(low), float(high)
    if lo != lo or hi != hi:
        raise InvalidArgumentError(f"clip bounds must not be NaN; got low={lo}, high={hi}")
    if lo > hi:
        raise InvalidArgumentError(f"clip low ({lo}) is above high ({hi})")
    return lo, hi


def to_host(backend: ComputeBackend, x: Any) -> npt.NDArray[Any]:
    """``x`` (a numpy array, or an array of ``backend``'s own) as a numpy array: no
    copy and no call for a numpy array, ``backend.to_numpy`` otherwise."""
    return x if type(x) is np.ndarray else np.asarray(backend.to_numpy(x))
