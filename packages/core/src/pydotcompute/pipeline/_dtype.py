"""The float dtype a pipeline reads its input values as, and what a cast to it would lose.

A pipeline's ``dtype`` describes its input, not any one stage, so it is an attribute
of the pipeline (``Pipeline(dtype=...)``, ``dtype`` in ``[pipeline]``) rather than a
stage setting. Unset, text input (JSON, CSV) stays float64, the precision it was
parsed in, and an array keeps its own float dtype. A value the target dtype cannot
hold (beyond its largest finite value, or an integer it cannot represent exactly) is
never cast silently: :func:`cast_problem` and :func:`rows_that_fit` say which.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ..errors import ParameterValueError

__all__ = ["INPUT_DTYPES", "cast_problem", "input_dtype", "parse_dtype", "rows_that_fit"]

#: The dtypes a pipeline's input may be read as (numpy has no bfloat16).
INPUT_DTYPES: Final = ("float16", "float32", "float64")
_DEFAULT: Final = np.dtype(np.float64)
# Integers up to 2**(mantissa bits + 1) are exact in a float dtype.
_EXACT: Final = {np.dtype(n): float(2 ** (np.finfo(n).nmant + 1)) for n in INPUT_DTYPES}
_MAX: Final = {np.dtype(n): float(np.finfo(n).max) for n in INPUT_DTYPES}


def parse_dtype(value: Any) -> np.dtype[Any]:
    """The numpy dtype named by ``value`` (one of :data:`INPUT_DTYPES`).

    Raises:
        ParameterValueError: anything else (``key`` is ``"dtype"``).
    """
    if isinstance(value, str) and value in INPUT_DTYPES:
        return np.dtype(value)
    hint = (
        ": numpy arrays have no bfloat16; read as float32 (device backends may narrow it)"
        if value == "bfloat16"
        else ""
    )
    raise ParameterValueError(
        f"dtype must be one of {', '.join(INPUT_DTYPES)}, got {value!r}{hint}", key="dtype"
    )


def input_dtype(given: np.dtype[Any] | None, source: np.dtype[Any] | None = None) -> np.dtype[Any]:
    """The dtype input values are read as: ``given`` if set, else a float ``source``
    array's own dtype, else float64 (text, integers, booleans)."""
    if given is not None:
        return given
    if source is not None and source in _MAX:
        return source
    return _DEFAULT


def cast_problem(value: float, dtype: np.dtype[Any]) -> str | None:
    """Why ``dtype`` cannot hold ``value`` (it overflows, or is an integer not exact in
    it; a Python ``int`` is judged exactly, beyond float64's 2**53 too), or None. NaN,
    infinities and rounded fractions are values it holds."""
    exact = _EXACT[dtype]
    if -exact <= value <= exact or (isinstance(value, float) and not math.isfinite(value)):
        return None  # the common case
    name = dtype.name
    if abs(value) > _MAX[dtype]:
        return f"{value!r} overflows {name} (largest {_MAX[dtype]:.7g})"
    if isinstance(value, int) or value.is_integer():
        cast = int(np.asarray(float(value)).astype(dtype))
        if cast != value:
            return (
                f"{int(value)} is not exact in {name} (it would become {cast}; "
                f"integers are exact up to 2**{int(math.log2(exact))})"
            )
    return None


def rows_that_fit(
    array: npt.NDArray[Any], dtype: np.dtype[Any]
) -> tuple[npt.NDArray[np.bool_], list[tuple[int, int, str]]]:
    """Which rows of a 2-D numeric ``array`` ``dtype`` holds (see :func:`cast_problem`),
    and ``(row, column, problem)`` for the first bad value of each row it does not."""
    good = np.ones(array.shape[0], dtype=np.bool_)
    problems: list[tuple[int, int, str]] = []
    kind, size = array.dtype.kind, array.dtype.itemsize
    if kind == "b" or (kind == "f" and size <= dtype.itemsize) or size < dtype.itemsize // 2:
        return good, problems  # every value of a narrower float or small int fits
    with np.errstate(invalid="ignore"):
        big = np.abs(array.astype(np.float64)) >= _EXACT[dtype]  # >=: 2**53 + 1 rounds
    for row in np.flatnonzero(big.any(axis=1)).tolist():
        found = _first_problem(array[row].tolist(), kind, dtype)
        if found is not None:
            good[row] = False
            problems.append((row, *found))
    return good, problems


def _first_problem(values: list[Any], kind: str, dtype: np.dtype[Any]) -> tuple[int, str] | None:
    for i, value in enumerate(values):
        # Integers are judged as Python ints: float64 itself loses them beyond 2**53.
        problem = cast_problem(int(value) if kind in "iu" else float(value), dtype)
        if problem is not None:
            return i, problem
    return None
