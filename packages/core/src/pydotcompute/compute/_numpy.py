"""The embedded compute backend: every batch operation on numpy, vectorised over rows.

This is the reference implementation of the numeric policies in
:mod:`pydotcompute.backend`; other backends are tested against it. Readings of the
policies that the module docstring there leaves open, fixed here:

* ``minmax_normalize``: a NaN input stays NaN even in a degenerate row, so an all-NaN
  row comes back all NaN; the other entries of a degenerate row (``hi - lo`` not
  ``> 0``: constant, a single non-NaN value, or a NaN range such as ``inf - inf``) are
  ``0.0``. Rows whose range is ``> 0`` follow IEEE arithmetic of
  ``(x - lo) / (hi - lo)`` in the compute dtype exactly, infinities included (``+inf``
  in ``[0, +inf]`` gives ``inf / inf = NaN``). Floating inputs keep their dtype;
  integer and bool inputs come back float32.
* The compute dtype: float64 input is computed in float64, everything else in float32
  (float16 computed in float32 and cast back). Reductions and ``segment_sum`` return
  the compute dtype, so a float64 pipeline's statistics are as exact as its input.
* ``clip`` compares in the output dtype with the bounds rounded to it (a bound beyond
  float16's range becomes an infinity), so the result holds input values or the
  rounded bounds, never anything in between.
* ``segment_sum`` accumulates and returns the compute dtype like the row reductions;
  ``segment_mean`` is that sum divided by the row count.
* ``partition`` returns ``offsets`` of length ``n + 1`` (``offsets[0] == 0``,
  ``offsets[-1] == len(keys)``), the same convention ``segment_sum`` takes, so
  ``segment_sum(x[perm], offsets)`` sums each bucket.

No operation emits a numpy ``RuntimeWarning``: overflow to ``inf`` and ``inf - inf``
are expected float outcomes here, not errors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ..errors import ArgumentTypeError, InvalidArgumentError
from ._protocol import BackendCapabilities, clip_bounds

__all__ = ["NumpyBackend"]

_F32: Final = np.dtype(np.float32)
_F64: Final = np.dtype(np.float64)


def compute_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype arithmetic on ``dtype`` input runs in: float64 for float64, else float32."""
    return _F64 if dtype == _F64 else _F32


def _as_2d_compute(x: Any, op: str) -> npt.NDArray[Any]:
    """Return ``x`` as a 2-D array of its compute dtype (no copy when it already is one).

    Raises:
        ValueError: ``x`` is not 2-D.
    """
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise InvalidArgumentError(f"{op} takes a 2-D array (rows, width); got shape {arr.shape}")
    dtype = compute_dtype(arr.dtype)
    if arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr


def _reduce_rows(
    x: Any, op: str, reduce: Callable[[npt.NDArray[Any]], npt.NDArray[Any]]
) -> npt.NDArray[Any]:
    """``reduce`` the rows of ``x`` (in its compute dtype, floating-point warnings off);
    rows of width 0 give NaN without calling it. Raises ValueError when ``x`` is not 2-D."""
    xc = _as_2d_compute(x, op)
    rows, width = xc.shape
    if width == 0:
        return np.full(rows, np.nan, dtype=xc.dtype)
    with np.errstate(all="ignore"):
        return reduce(xc)


def _row_mean(xc: npt.NDArray[Any]) -> npt.NDArray[Any]:
    total: npt.NDArray[Any] = np.add.reduce(xc, axis=1, dtype=xc.dtype)
    total /= xc.dtype.type(xc.shape[1])
    return total


def _row_var(xc: npt.NDArray[Any]) -> npt.NDArray[Any]:
    dev = np.subtract(xc, _row_mean(xc)[:, None])  # two-pass: no catastrophic cancelling
    np.multiply(dev, dev, out=dev)
    return _row_mean(dev)


def _row_std(xc: npt.NDArray[Any]) -> npt.NDArray[Any]:
    std: npt.NDArray[Any] = np.sqrt(_row_var(xc))
    return std


def _row_range(xc: npt.NDArray[Any]) -> npt.NDArray[Any]:
    span: npt.NDArray[Any] = np.maximum.reduce(xc, axis=1) - np.minimum.reduce(xc, axis=1)
    return span


def _float_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype an element-wise result has: floating dtypes kept, others float32."""
    return dtype if np.issubdtype(dtype, np.floating) else _F32


def _nan_ignoring_min_max(x: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Per-row min and max over the non-NaN entries (NaN for all-NaN rows).

    ``minimum``/``maximum`` reductions are faster than ``fmin``/``fmax`` here but let
    NaN win; only the rows where it did are redone with the NaN-ignoring ones.
    """
    lo: npt.NDArray[Any] = np.minimum.reduce(x, axis=1)
    hi: npt.NDArray[Any] = np.maximum.reduce(x, axis=1)
    nan_rows = np.isnan(lo)
    if nan_rows.any():
        some = x[nan_rows]
        lo[nan_rows] = np.fmin.reduce(some, axis=1)
        hi[nan_rows] = np.fmax.reduce(some, axis=1)
    return lo, hi


class NumpyBackend:
    """The ``numpy`` compute backend: host arrays, float32 arithmetic (float64 for float64
    input), no Python row loops.

    Stateless and safe to share between stages and threads. Every method accepts any
    array-like numpy can convert; 2-D operations raise :class:`ValueError` naming the
    shape when given anything else.
    """

    name: str = "numpy"
    capabilities: BackendCapabilities = BackendCapabilities()

    def __repr__(self) -> str:
        return "NumpyBackend()"

    # -- conversion --------------------------------------------------------------------

    def asarray(self, data: Any, dtype: str | None = "float32") -> npt.NDArray[Any]:
        """Convert host data (numpy array, nested lists) to a numpy array of ``dtype``
        (``None``: the data's own dtype).

        No copy is made when ``data`` already is an array of that dtype. A value beyond
        ``dtype``'s range becomes an infinity, without a warning (see the module's doc).
        """
        with np.errstate(over="ignore"):
            return np.asarray(data, dtype=None if dtype is None else np.dtype(dtype))

    def to_numpy(self, x: Any) -> npt.NDArray[Any]:
        """Return ``x`` as a host numpy array.

        Arrays of this backend already live on the host, so an ndarray is returned as
        is; callers that go on to mutate the result must copy it themselves.
        """
        return np.asarray(x)

    # -- joining -----------------------------------------------------------------------

    def concat_rows(self, parts: Sequence[Any]) -> npt.NDArray[Any]:
        """The rows of ``parts`` (2-D, equal widths) one after another.

        Raises:
            ValueError: ``parts`` is empty, or the widths differ.
        """
        if not parts:
            raise InvalidArgumentError("concat_rows needs at least one array")
        if len(parts) == 1:
            return np.asarray(parts[0])
        return np.concatenate([np.asarray(p) for p in parts])

    def stack_columns(self, columns: Sequence[Any]) -> npt.NDArray[Any]:
        """1-D arrays of equal length as the columns of a 2-D array: float64 when a
        column is float64 (the statistics of float64 rows), else float32.

        Raises:
            ValueError: ``columns`` is empty, or the lengths differ.
        """
        if not columns:
            raise InvalidArgumentError("stack_columns needs at least one column")
        arrays = [np.asarray(c) for c in columns]
        dtype = _F64 if any(a.dtype == _F64 for a in arrays) else _F32
        return np.stack([a.astype(dtype, copy=False) for a in arrays], axis=1)

    def take_rows(self, x: Any, index: Any) -> npt.NDArray[Any]:
        """The rows of ``x`` at ``index`` (1-D integers), in order, as a new array.

        Raises:
            ValueError: ``x`` is not 2-D, or ``index`` is not 1-D.
            TypeError: ``index`` is not integers.
            IndexError: an index is out of range.
        """
        arr = np.asarray(x)
        if arr.ndim != 2:
            raise InvalidArgumentError(
                f"take_rows takes a 2-D array (rows, width); got shape {arr.shape}"
            )
        idx = np.asarray(index)
        if idx.ndim != 1:
            raise InvalidArgumentError(f"take_rows index must be 1-D; got shape {idx.shape}")
        if idx.size == 0:
            idx = idx.astype(np.int64)
        if idx.dtype.kind not in "iu":
            raise ArgumentTypeError(f"take_rows index must be integers; got dtype {idx.dtype}")
        taken: npt.NDArray[Any] = arr[idx]
        return taken

    # -- element-wise ------------------------------------------------------------------

    def minmax_normalize(self, x: Any) -> npt.NDArray[Any]:
        """Row-wise min-max normalize a 2-D array (policy in the module docstring).

        Returns a new array with the shape of ``x``; the input is never modified.

        Raises:
            ValueError: ``x`` is not 2-D.
        """
        src = np.asarray(x)
        out_dtype = _float_dtype(src.dtype)
        xc = _as_2d_compute(src, "minmax_normalize")
        rows, width = xc.shape
        if rows == 0 or width == 0:
            return np.empty((rows, width), dtype=out_dtype)
        one = xc.dtype.type(1)
        with np.errstate(all="ignore"):
            lo, hi = _nan_ignoring_min_max(xc)
            span = hi - lo  # NaN for all-NaN rows and for inf - inf
            good = span > 0  # False for NaN spans too
            out: npt.NDArray[Any] = np.subtract(xc, lo[:, None])
            np.divide(out, np.where(good, span, one)[:, None], out=out)
        if not good.all():
            bad = ~good
            bad_rows = xc[bad]
            out[bad] = np.where(np.isnan(bad_rows), np.nan, 0).astype(xc.dtype)
        if out.dtype != out_dtype:
            converted: npt.NDArray[Any] = out.astype(out_dtype)
            return converted
        return out

    def clip(self, x: Any, low: float, high: float) -> npt.NDArray[Any]:
        """Each element of ``x`` (any shape) limited to ``[low, high]``, as a new array.

        Floating dtypes are kept (the bounds rounded to them); integer and bool input
        comes back float32. NaN stays NaN.

        Raises:
            ValueError: a bound is NaN, or ``low > high``.
        """
        lo, hi = clip_bounds(low, high)
        src = np.asarray(x)
        dtype = _float_dtype(src.dtype)
        with np.errstate(all="ignore"):  # a bound beyond float16 rounds to an infinity
            bounds = np.array([lo, hi], dtype=dtype)
        clipped: npt.NDArray[Any] = np.clip(src.astype(dtype, copy=False), bounds[0], bounds[1])
        return clipped

    # -- row reductions ----------------------------------------------------------------

    def row_sum(self, x: Any) -> npt.NDArray[Any]:
        """Sum of each row, accumulated in the compute dtype; a width-0 row sums to ``0.0``.

        Raises:
            ValueError: ``x`` is not 2-D.
        """
        xc = _as_2d_compute(x, "row_sum")
        with np.errstate(all="ignore"):
            total: npt.NDArray[Any] = np.add.reduce(xc, axis=1, dtype=xc.dtype)
        return total

    def row_mean(self, x: Any) -> npt.NDArray[Any]:
        """Mean of each row in the compute dtype, NaN propagating; a width-0 row gives NaN.

        Raises:
            ValueError: ``x`` is not 2-D.
        """
        return _reduce_rows(x, "row_mean", _row_mean)

    def row_min(self, x: Any) -> npt.NDArray[Any]:
        """Minimum of each row in the compute dtype, NaN propagating; a width-0 row gives NaN.

        Raises:
            ValueError: ``x`` is not 2-D.
        """
        return _reduce_rows(x, "row_min", lambda xc: np.minimum.reduce(xc, axis=1))

    def row_max(self, x: Any) -> npt.NDArray[Any]:
        """Maximum of each row in the compute dtype, NaN propagating; a width-0 row gives NaN.

        Raises:
            ValueError: ``x`` is not 2-D.
        """
        return _reduce_rows(x, "row_max", lambda xc: np.maximum.reduce(xc, axis=1))

    def row_std(self, x: Any) -> npt.NDArray[Any]:
        """Population standard deviation (ddof=0) of each row in the compute dtype, two-pass.

        NaN propagates, and so does ``inf`` turning into NaN (``inf - inf``); a width-0
        row gives NaN.

        Raises:
            ValueError: ``x`` is not 2-D.
        """
        return _reduce_rows(x, "row_std", _row_std)

    def row_var(self, x: Any) -> npt.NDArray[Any]:
        """Population variance (ddof=0) of each row in the compute dtype, two-pass: the
        mean of the squared deviations from the row's mean (``row_std`` squared before
        the root).

        NaN and infinities give NaN; a width-0 row gives NaN.

        Raises:
            ValueError: ``x`` is not 2-D.
        """
        return _reduce_rows(x, "row_var", _row_var)

    def row_range(self, x: Any) -> npt.NDArray[Any]:
        """``max - min`` of each row in the compute dtype, NaN propagating (``inf - inf``
        is NaN); a width-0 row gives NaN.

        Raises:
            ValueError: ``x`` is not 2-D.
        """
        return _reduce_rows(x, "row_range", _row_range)

    # -- segments and partitions ------------------------------------------------------

    def segment_sum(self, x: Any, offsets: Any) -> npt.NDArray[Any]:
        """Sum the rows of each segment ``offsets[i]:offsets[i+1]``: shape ``(k, width)``.

        ``offsets`` has ``k + 1`` non-decreasing integer entries within
        ``[0, len(x)]``; rows outside ``offsets[0]:offsets[-1]`` are ignored, and an
        empty segment sums to zeros. The compute dtype out and in the accumulation.

        Raises:
            ValueError: ``x`` is not 2-D, or ``offsets`` is not a non-empty 1-D
                non-decreasing integer sequence within ``[0, len(x)]``.
        """
        xc = _as_2d_compute(x, "segment_sum")
        offs = np.asarray(offsets)
        if offs.ndim != 1 or offs.size == 0:
            raise InvalidArgumentError(
                f"segment_sum offsets must be 1-D with at least one entry; got shape {offs.shape}"
            )
        if offs.dtype.kind not in "iu":
            raise InvalidArgumentError(
                f"segment_sum offsets must be integers; got dtype {offs.dtype}"
            )
        offs = offs.astype(np.int64, copy=False)
        rows, width = xc.shape
        if offs[0] < 0 or offs[-1] > rows or bool(np.any(np.diff(offs) < 0)):
            raise InvalidArgumentError(
                "segment_sum offsets must be non-decreasing and within "
                f"[0, {rows}]; got {offs.tolist() if offs.size <= 16 else offs}"
            )
        k = offs.size - 1
        out = np.zeros((k, width), dtype=xc.dtype)
        if k == 0 or width == 0:
            return out
        starts = offs[:-1]
        nonempty = offs[1:] > starts
        if not nonempty.any():
            return out
        # Empty segments are dropped before reduceat (which would otherwise return the
        # row at their start); segments are contiguous, so each kept start still runs
        # to the next kept start, and the slice ends the last one at offsets[-1].
        with np.errstate(all="ignore"):
            kept = starts[nonempty]
            out[nonempty] = np.add.reduceat(xc[: offs[-1]], kept, axis=0, dtype=xc.dtype)
        return out

    def segment_mean(self, x: Any, offsets: Any) -> npt.NDArray[Any]:
        """Mean of the rows of each segment ``offsets[i]:offsets[i+1]``: the
        :meth:`segment_sum` divided by the segment's row count; an empty segment gives
        NaN. Raises as :meth:`segment_sum`."""
        sums = self.segment_sum(x, offsets)
        lengths = np.diff(np.asarray(offsets, dtype=np.int64)).astype(sums.dtype)
        with np.errstate(all="ignore"):  # 0 / 0 for an empty segment: NaN by policy
            sums /= lengths[:, None]
        return sums

    def partition(
        self, keys: Any, n: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Bucket ``keys % n`` (Python modulo): ``(counts, offsets, permutation)``, int64.

        ``counts`` has ``n`` entries; ``offsets`` has ``n + 1`` (a prefix sum starting
        at 0); ``keys[permutation[offsets[b]:offsets[b+1]]]`` are the keys of bucket
        ``b`` in their original order (stable).

        Raises:
            ValueError: ``n < 1``, or ``keys`` is not 1-D.
            TypeError: ``keys`` is not an integer array, or ``n`` is not an int.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise ArgumentTypeError(f"partition n must be an int; got {type(n).__name__}")
        if n < 1:
            raise InvalidArgumentError(f"partition n must be at least 1; got {n}")
        k = np.asarray(keys)
        if k.ndim != 1:
            raise InvalidArgumentError(f"partition keys must be 1-D; got shape {k.shape}")
        if k.size == 0:
            k = k.astype(np.int64)
        if k.dtype.kind not in "iu":
            raise ArgumentTypeError(f"partition keys must be integers; got dtype {k.dtype}")
        # Widen first: ``int8_keys % 200`` overflows under NumPy 2's scalar rules, and a
        # narrow modulo would bucket differently from the device backends. uint64 keys
        # stay unsigned so that keys above 2**63 are not wrapped negative.
        wide = k.astype(np.uint64 if k.dtype == np.uint64 else np.int64, copy=False)
        buckets = np.mod(wide, wide.dtype.type(n)).astype(np.int64, copy=False)
        counts = np.bincount(buckets, minlength=int(n)).astype(np.int64, copy=False)
        offsets = np.zeros(int(n) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        permutation = np.argsort(buckets, kind="stable").astype(np.int64, copy=False)
        return counts, offsets, permutation
