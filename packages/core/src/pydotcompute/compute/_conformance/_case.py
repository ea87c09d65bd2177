"""A conformance case, the reference and data the cases share, and how results are compared:
shape, dtype and values of a backend's result against numpy's, NaN where NaN."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from .._numpy import NumpyBackend
from .._protocol import ComputeBackend

__all__ = [
    "EDGE_ROWS",
    "EXACT_REDUCTIONS",
    "FLOAT_DTYPES",
    "INF",
    "NAN",
    "OTHER_DTYPES",
    "PARTITION_KEYS",
    "RANDOM_SHAPES",
    "REDUCTIONS",
    "REF",
    "SEGMENT_OFFSETS",
    "SUMMABLE_ROWS",
    "ConformanceCase",
    "compare",
    "edge_rows",
    "expect",
    "f32",
    "f64",
    "host",
    "i64",
    "raises",
    "random_rows",
]

REF: Final = NumpyBackend()
NAN: Final = float("nan")
INF: Final = float("inf")

#: Floating dtypes every backend keeps through element-wise operations.
FLOAT_DTYPES: Final = ("float16", "float32", "float64")
#: Non-floating dtypes that element-wise operations turn into float32.
OTHER_DTYPES: Final = ("int32", "int64", "uint8", "bool")
REDUCTIONS: Final = ("sum", "mean", "min", "max", "std", "var", "range")
#: Reductions whose result the policy fixes bit for bit, whatever the order of work.
EXACT_REDUCTIONS: Final = ("min", "max", "range")

EDGE_ROWS: Final = (
    (1.0, 2.0, 3.0, 4.0, 5.0),  # the guide's example
    (5.0, 5.0, 5.0, 5.0, 5.0),  # constant: normalizes to zeros
    (-3.0, 0.0, 3.0, 1.5, -1.5),
    (NAN, 1.0, 3.0, 2.0, NAN),  # NaN stays NaN; the range is over the rest
    (NAN, NAN, NAN, NAN, NAN),  # all NaN
    (NAN, 7.0, NAN, NAN, NAN),  # a single non-NaN value: degenerate
    (-INF, 0.0, 1.0, 2.0, 3.0),  # infinite range: IEEE arithmetic of the formula
    (INF, INF, INF, INF, INF),  # inf - inf: degenerate
    (-INF, INF, 0.0, 1.0, NAN),
    (1e-30, 2e-30, 3e-30, 4e-30, 5e-30),  # tiny but positive range
    (-3e38, 3e38, 0.0, 1.0, 2.0),  # the range overflows to inf (sums depend on order)
)
#: The edge rows whose sums do not depend on the order of addition.
SUMMABLE_ROWS: Final = EDGE_ROWS[:-1]

SEGMENT_OFFSETS: Final = (
    (0, 2, 5, 6),
    (0, 0, 3, 3, 6),  # empty segments first and in the middle
    (0, 6, 6, 6),  # empty segments at the end
    (1, 4),  # rows outside offsets[0]:offsets[-1] are ignored
    (2, 2),  # one empty segment
    (0,),  # no segment at all
    (0, 1, 2, 3, 4, 5, 6),
)

PARTITION_KEYS: Final = (
    ((5, 3, 8, 1, 0, 4, 4, 9), 3),
    ((-1, -2, -3, -4, 7, -7), 4),  # negative keys land in [0, n)
    ((3, 3, 3, 3), 2),  # stability visible; one bucket empty
    ((10, 20, 30), 1),
    ((), 3),
    ((2**62, -(2**62), 123456789012), 7),
)


@dataclasses.dataclass(frozen=True)
class ConformanceCase:
    """One named check of a backend against the policies and the numpy reference."""

    name: str  #: ``"<operation>: <what>"``, unique in the suite
    check: Callable[[ComputeBackend], None] = dataclasses.field(repr=False)

    def run(self, backend: ComputeBackend) -> None:
        """Check ``backend``.

        Raises:
            AssertionError: it does not conform; the message names the backend, the
                case and the mismatch.
        """
        try:
            self.check(backend)
        except AssertionError as exc:
            raise AssertionError(f"backend {backend.name!r}, case {self.name!r}: {exc}") from exc

    def __str__(self) -> str:
        return self.name


# -- comparing -------------------------------------------------------------------------------


def host(backend: ComputeBackend, x: Any) -> npt.NDArray[Any]:
    out = backend.to_numpy(x)
    if type(out) is not np.ndarray:
        raise AssertionError(f"to_numpy returned a {type(out).__name__}, not a numpy array")
    return out


def expect(
    backend: ComputeBackend,
    what: str,
    actual: Any,
    expected: npt.ArrayLike,
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
    dtype: Any = None,
) -> None:
    """``actual`` (native) has ``expected``'s shape and dtype (or ``dtype``) and its
    values, NaN where NaN, exactly unless a tolerance is given."""
    compare(what, host(backend, actual), expected, rtol=rtol, atol=atol, dtype=dtype)


def compare(
    what: str,
    got: npt.NDArray[Any],
    expected: npt.ArrayLike,
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
    dtype: Any = None,
) -> None:
    """As :func:`_expect`, for a result already on the host."""
    want = np.asarray(expected)
    want_dtype = want.dtype if dtype is None else np.dtype(dtype)
    if got.shape != want.shape:
        raise AssertionError(f"{what}: shape {got.shape}, expected {want.shape}")
    if got.dtype != want_dtype:
        raise AssertionError(f"{what}: dtype {got.dtype}, expected {want_dtype}")
    np.testing.assert_allclose(
        got.astype(np.float64),
        want.astype(np.float64),
        rtol=rtol,
        atol=atol,
        equal_nan=True,
        err_msg=what,
    )


def raises(
    what: str,
    errors: type[Exception] | tuple[type[Exception], ...],
    call: Callable[..., Any],
    *args: Any,
) -> None:
    """``call(*args)`` raises one of ``errors`` (a contract error, not any error)."""
    try:
        call(*args)
    except errors:
        return
    except Exception as exc:
        raise AssertionError(f"{what}: raised {exc!r}, expected {errors}") from exc
    raise AssertionError(f"{what}: returned, expected {errors} to be raised")


def f32(values: Any) -> npt.NDArray[np.float32]:
    return np.array(values, dtype=np.float32)


def f64(values: Any) -> npt.NDArray[np.float64]:
    return np.array(values, dtype=np.float64)


def i64(values: Any) -> npt.NDArray[np.int64]:
    return np.array(values, dtype=np.int64)


def edge_rows() -> npt.NDArray[np.float32]:
    return np.array(EDGE_ROWS, dtype=np.float32)


def random_rows(seed: int, rows: int, width: int, specials: bool = True) -> npt.NDArray[np.float32]:
    """Normal values times 10; with ``specials``, NaN and infinities in a few rows."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, width)) * 10).astype(np.float32)
    if specials and rows and width:
        for value in (NAN, INF, -INF):
            hit = rng.integers(0, rows * width, size=max(1, rows // 4))
            x.flat[hit] = value
        x[rows // 2] = x[rows // 2, 0]  # one constant row
    return x


RANDOM_SHAPES: Final = ((1, 1), (7, 33), (40, 70), (3, 130), (0, 4), (4, 0))
