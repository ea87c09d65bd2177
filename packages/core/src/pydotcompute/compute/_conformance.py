"""The backend conformance suite: every operation of :class:`ComputeBackend`, checked against
the policies and against :class:`NumpyBackend`, the reference.

Each :class:`ConformanceCase` is one named check; ``case.run(backend)`` returns quietly or
raises ``AssertionError`` naming the backend, the operation, the input and the mismatch.
The suite needs numpy only (no pytest), so a third-party backend runs it from its own
tests, one test per case::

    import pytest
    from pydotcompute.backend import conformance_cases

    @pytest.mark.parametrize("case", conformance_cases(), ids=str)
    def test_conformance(case):
        case.run(MyBackend())

Inputs are small (at most a few thousand elements per call), so the suite also suits a
slow backend such as Triton's interpreter. Results are compared exactly wherever the
policy fixes every bit (min-max normalization, clip, min, max, range, partitions,
integer-valued sums); sums over float32 values, means and standard deviations within
float32 rounding, since backends may add in another order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ._numpy import NumpyBackend
from ._protocol import BackendCapabilities, ComputeBackend, check_backend

__all__ = ["ConformanceCase", "conformance_cases"]

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


def _host(backend: ComputeBackend, x: Any) -> npt.NDArray[Any]:
    out = backend.to_numpy(x)
    if type(out) is not np.ndarray:
        raise AssertionError(f"to_numpy returned a {type(out).__name__}, not a numpy array")
    return out


def _expect(
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
    _compare(what, _host(backend, actual), expected, rtol=rtol, atol=atol, dtype=dtype)


def _compare(
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


def _raises(
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


def _f32(values: Any) -> npt.NDArray[np.float32]:
    return np.array(values, dtype=np.float32)


def _f64(values: Any) -> npt.NDArray[np.float64]:
    return np.array(values, dtype=np.float64)


def _i64(values: Any) -> npt.NDArray[np.int64]:
    return np.array(values, dtype=np.int64)


def _edge() -> npt.NDArray[np.float32]:
    return np.array(EDGE_ROWS, dtype=np.float32)


def _random(seed: int, rows: int, width: int, specials: bool = True) -> npt.NDArray[np.float32]:
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


# -- the cases -------------------------------------------------------------------------------


def _protocol_cases() -> list[ConformanceCase]:
    def members(b: ComputeBackend) -> None:
        check_backend(b)
        if not isinstance(b.capabilities, BackendCapabilities):
            raise AssertionError("capabilities is not a BackendCapabilities")

    return [ConformanceCase("protocol: name, capabilities and every method", members)]


def _conversion_cases() -> list[ConformanceCase]:
    def defaults(b: ComputeBackend) -> None:
        _expect(b, "asarray(list)", b.asarray([[1, 2], [3, 4]]), _f32([[1, 2], [3, 4]]))
        _expect(b, "asarray(list, 'int64')", b.asarray([1, -2], "int64"), _i64([1, -2]))
        native64 = b.asarray(_f64([[0.5, 0.1]]), "float64")
        _expect(
            b,
            "asarray(native, 'float32')",
            b.asarray(native64, "float32"),
            _f32([[0.5, 0.1]]),
        )

    def keep_dtype(b: ComputeBackend) -> None:
        for dtype in (*FLOAT_DTYPES, "int32", "int64"):
            x = np.arange(6).reshape(2, 3).astype(dtype)
            _expect(b, f"asarray({dtype} array, None)", b.asarray(x, None), x)
            _expect(b, f"asarray(native {dtype}, None)", b.asarray(b.asarray(x, None), None), x)

    def round_trip(b: ComputeBackend) -> None:
        for dtype in (*FLOAT_DTYPES, *OTHER_DTYPES):
            x = np.array([[0, 1, 1], [1, 0, 1]], dtype=dtype)
            _expect(b, f"to_numpy(asarray(x, {dtype!r}))", b.asarray(x, dtype), x)
        special = _f32([[NAN, INF, -INF, -0.0, 3e38, 1e-45]])
        _expect(b, "to_numpy of NaN, infinities and extremes", b.asarray(special), special)

    return [
        ConformanceCase("asarray: float32 by default, named dtypes", defaults),
        ConformanceCase("asarray: dtype None keeps the data's dtype", keep_dtype),
        ConformanceCase("to_numpy: every dtype round-trips", round_trip),
    ]


def _row_cases() -> list[ConformanceCase]:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    c = _f32([[NAN, INF, -1.0]])

    def concat(b: ComputeBackend) -> None:
        want = np.concatenate([a, a[:0], c])
        _expect(
            b,
            "concat_rows(native parts)",
            b.concat_rows([b.asarray(p) for p in (a, a[:0], c)]),
            want,
        )
        _expect(
            b,
            "concat_rows(host and native)",
            b.concat_rows([a, b.asarray(c)]),
            np.concatenate([a, c]),
        )
        _expect(b, "concat_rows(one part)", b.concat_rows([b.asarray(a)]), a)
        half = a.astype(np.float16)
        _expect(
            b,
            "concat_rows keeps float16",
            b.concat_rows([b.asarray(half, None)] * 2),
            np.concatenate([half, half]),
        )
        _raises("concat_rows([])", ValueError, lambda: b.concat_rows([]))

    def stack(b: ComputeBackend) -> None:
        cols = [b.row_sum(b.asarray(a)), _i64([7, 8]), b.row_max(b.asarray(a))]
        _expect(b, "stack_columns", b.stack_columns(cols), _f32([[3, 7, 2], [12, 8, 5]]))
        empty = [b.row_sum(b.asarray(a[:0]))] * 2
        _expect(
            b,
            "stack_columns of empty columns",
            b.stack_columns(empty),
            np.zeros((0, 2), np.float32),
        )
        _raises("stack_columns([])", ValueError, lambda: b.stack_columns([]))

    def take_native(b: ComputeBackend) -> None:
        x = np.arange(12, dtype=np.float32).reshape(4, 3)
        native = b.asarray(x)
        for index in ([3, 3, 1], [0, 1, 2, 3], [], [2]):
            idx = np.array(index, dtype=np.int64)
            _expect(b, f"take_rows(native, {index})", b.take_rows(native, idx), x[idx])
            _expect(
                b,
                f"take_rows(native, native {index})",
                b.take_rows(native, b.asarray(idx, "int64")),
                x[idx],
            )
        _expect(
            b,
            "take_rows keeps the dtype",
            b.take_rows(b.asarray(x, "float64"), _i64([1])),
            x[[1]].astype(np.float64),
        )

    def take_host(b: ComputeBackend) -> None:
        x = np.arange(12, dtype=np.float32).reshape(4, 3)
        for index in (_i64([2, 0]), b.asarray([2, 0], "int64")):
            out = b.take_rows(x, index)
            if type(out) is not np.ndarray:
                raise AssertionError(
                    f"take_rows of host rows gave a {type(out).__name__}, not numpy"
                )
            np.testing.assert_array_equal(out, x[[2, 0]], err_msg="take_rows(host rows)")

    def take_errors(b: ComputeBackend) -> None:
        x = b.asarray(np.zeros((3, 2)))
        _raises(
            "take_rows(1-D x)",
            ValueError,
            lambda: b.take_rows(b.asarray(np.zeros(3)), _i64([0])),
        )
        _raises("take_rows(x, 2-D index)", ValueError, lambda: b.take_rows(x, _i64([[0]])))
        _raises("take_rows(x, float index)", TypeError, lambda: b.take_rows(x, _f32([0.0])))

    return [
        ConformanceCase("concat_rows: parts in order, dtype kept", concat),
        ConformanceCase("stack_columns: float32 columns", stack),
        ConformanceCase("take_rows: native rows", take_native),
        ConformanceCase("take_rows: host rows stay numpy", take_host),
        ConformanceCase("take_rows: bad arguments raise", take_errors),
    ]


def _minmax_cases() -> list[ConformanceCase]:
    def policy(b: ComputeBackend) -> None:
        out = _host(b, b.minmax_normalize(_edge()[:6]))
        _compare("the guide's row", out[0], _f32([0.0, 0.25, 0.5, 0.75, 1.0]))
        _compare("a constant row", out[1], np.zeros(5, np.float32))
        _compare("NaN entries", out[3], _f32([NAN, 0.0, 1.0, 0.5, NAN]))
        _compare("an all-NaN row", out[4], np.full(5, NAN, np.float32))
        _compare("one non-NaN value", out[5], _f32([NAN, 0.0, NAN, NAN, NAN]))

    def edge(b: ComputeBackend) -> None:
        x = _edge()
        _expect(
            b,
            "minmax_normalize(edge rows)",
            b.minmax_normalize(b.asarray(x)),
            REF.minmax_normalize(x),
        )

    def dtypes(b: ComputeBackend) -> None:
        base = _f32([[1, 2, 4], [3, 3, 3], [NAN, 0.5, 1], [-7, 0.1, 65000]])
        for dtype in FLOAT_DTYPES:
            x = base.astype(dtype)
            _expect(
                b,
                f"minmax_normalize({dtype})",
                b.minmax_normalize(b.asarray(x, dtype)),
                REF.minmax_normalize(x),
            )
        for dtype in OTHER_DTYPES:
            x = np.array([[0, 1, 1], [1, 1, 1]], dtype=dtype)
            _expect(
                b,
                f"minmax_normalize({dtype})",
                b.minmax_normalize(b.asarray(x, dtype)),
                _f32([[0, 1, 1], [0, 0, 0]]),
            )

    def shapes(b: ComputeBackend) -> None:
        for shape in ((0, 5), (3, 0), (0, 0), (1, 1), (1, 7)):
            x = np.arange(shape[0] * shape[1], dtype=np.float32).reshape(shape)
            _expect(b, f"minmax_normalize{shape}", b.minmax_normalize(x), REF.minmax_normalize(x))

    def random(b: ComputeBackend) -> None:
        for seed, (rows, width) in enumerate(RANDOM_SHAPES):
            x = _random(seed, rows, width)
            _expect(
                b,
                f"minmax_normalize(random {rows}x{width})",
                b.minmax_normalize(b.asarray(x)),
                REF.minmax_normalize(x),
            )

    def untouched(b: ComputeBackend) -> None:
        x = _f32([[3, 1, 2], [NAN, 5, 5]])
        native = b.asarray(x)
        b.minmax_normalize(native)
        _expect(b, "the input after minmax_normalize", native, x)

    def errors(b: ComputeBackend) -> None:
        for bad in (np.zeros(3), np.zeros((2, 2, 2))):
            _raises(
                f"minmax_normalize(shape {bad.shape})",
                ValueError,
                b.minmax_normalize,
                bad,
            )

    return [
        ConformanceCase("minmax_normalize: the policy's values", policy),
        ConformanceCase("minmax_normalize: edge rows exactly", edge),
        ConformanceCase("minmax_normalize: floats keep their dtype, others give float32", dtypes),
        ConformanceCase("minmax_normalize: empty and single shapes", shapes),
        ConformanceCase("minmax_normalize: random arrays with NaN and infinities, exactly", random),
        ConformanceCase("minmax_normalize: leaves its input alone", untouched),
        ConformanceCase("minmax_normalize: non-2-D raises ValueError", errors),
    ]


def _clip_cases() -> list[ConformanceCase]:
    def policy(b: ComputeBackend) -> None:
        x = _f32([[-2.0, 0.25, 0.5, 0.75, 9.0], [NAN, -INF, INF, -0.0, 0.3]])
        want = _f32([[0.25, 0.25, 0.5, 0.75, 0.75], [NAN, 0.25, 0.75, 0.25, 0.3]])
        _expect(b, "clip(x, 0.25, 0.75)", b.clip(b.asarray(x), 0.25, 0.75), want)
        _expect(
            b, "clip to one value", b.clip(x, 1.0, 1.0), np.where(np.isnan(x), x, np.float32(1))
        )
        _expect(b, "clip(x, -inf, inf)", b.clip(x, -INF, INF), x)

    def dtypes(b: ComputeBackend) -> None:
        base = _f32([[-1, 0.1, 0.2, 0.3, 0.7, 2], [NAN, 65000, -65000, 1e-8, 0.5, 1]])
        for dtype in FLOAT_DTYPES:
            x = base.astype(dtype)
            for low, high in ((0.1, 0.3), (-1e6, 0.2), (70000.0, 80000.0)):
                _expect(
                    b,
                    f"clip({dtype}, {low}, {high})",
                    b.clip(b.asarray(x, dtype), low, high),
                    REF.clip(x, low, high),
                )
        for dtype in OTHER_DTYPES:
            x = np.array([[0, 1, 2], [3, 1, 0]], dtype=dtype)
            _expect(
                b,
                f"clip({dtype})",
                b.clip(b.asarray(x, dtype), 0.5, 2.0),
                REF.clip(x, 0.5, 2.0),
                dtype="float32",
            )

    def shapes(b: ComputeBackend) -> None:
        for shape in ((0, 5), (3, 0), (7,), (0,), (2, 3, 4)):
            x = (np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) - 4) / 3
            _expect(b, f"clip{shape}", b.clip(b.asarray(x), -0.5, 1.5), REF.clip(x, -0.5, 1.5))

    def random(b: ComputeBackend) -> None:
        for seed, (rows, width) in enumerate(RANDOM_SHAPES):
            x = _random(seed, rows, width)
            _expect(
                b,
                f"clip(random {rows}x{width})",
                b.clip(b.asarray(x), -5.5, 3.25),
                REF.clip(x, -5.5, 3.25),
            )

    def untouched(b: ComputeBackend) -> None:
        x = _f32([[3, -1, 2]])
        native = b.asarray(x)
        b.clip(native, 0.0, 1.0)
        _expect(b, "the input after clip", native, x)

    def errors(b: ComputeBackend) -> None:
        x = np.zeros((2, 2), np.float32)
        _raises("clip(x, 2, 1)", ValueError, lambda: b.clip(x, 2.0, 1.0))
        _raises("clip(x, nan, 1)", ValueError, lambda: b.clip(x, NAN, 1.0))
        _raises("clip(x, 0, nan)", ValueError, lambda: b.clip(x, 0.0, NAN))

    return [
        ConformanceCase("clip: the policy's values", policy),
        ConformanceCase(
            "clip: floats keep their dtype, bounds rounded to it; others float32", dtypes
        ),
        ConformanceCase("clip: any shape, empty included", shapes),
        ConformanceCase("clip: random arrays with NaN and infinities, exactly", random),
        ConformanceCase("clip: leaves its input alone", untouched),
        ConformanceCase("clip: NaN bounds and low > high raise ValueError", errors),
    ]


def _reduce(b: ComputeBackend, op: str, x: Any) -> Any:
    reductions: dict[str, Callable[[Any], Any]] = {
        "sum": b.row_sum,
        "mean": b.row_mean,
        "min": b.row_min,
        "max": b.row_max,
        "std": b.row_std,
        "var": b.row_var,
        "range": b.row_range,
    }
    return reductions[op](x)


def _reduction_cases(op: str) -> list[ConformanceCase]:
    exact = op in EXACT_REDUCTIONS
    label = f"row_{op}"

    def tolerance(x: npt.NDArray[Any]) -> tuple[float, float]:
        """(rtol, atol) for reordered float32 sums of ``x``'s finite values."""
        if exact:
            return 0.0, 0.0
        finite = np.abs(x[np.isfinite(x)])
        scale = float(finite.max(initial=0.0)) * max(x.shape[1], 1)
        return 1e-5, 1e-6 * (scale * scale if op == "var" else scale) + 1e-30

    def edge(b: ComputeBackend) -> None:
        x = _edge() if exact else np.array(SUMMABLE_ROWS, dtype=np.float32)
        rtol, atol = (0.0, 0.0) if exact else (2e-6, 1e-20)  # 1e-30**2 underflows in var
        _expect(
            b,
            f"{label}(edge rows)",
            _reduce(b, op, b.asarray(x)),
            _reduce(REF, op, x),
            rtol=rtol,
            atol=atol,
        )

    def dtypes(b: ComputeBackend) -> None:
        for dtype in (*FLOAT_DTYPES, "int32", "int64"):
            x = np.array([[1, 2, 3, 4], [5, 5, 5, 5], [-2, 0, 2, 8]], dtype=dtype)
            _expect(
                b,
                f"{label}({dtype})",
                _reduce(b, op, b.asarray(x, dtype)),
                _reduce(REF, op, x),
                rtol=1e-6,
            )

    def empty(b: ComputeBackend) -> None:
        _expect(
            b,
            f"{label} of width-0 rows",
            _reduce(b, op, np.zeros((4, 0), np.float32)),
            np.zeros(4, np.float32) if op == "sum" else np.full(4, NAN, np.float32),
        )
        for shape in ((0, 3), (0, 0)):
            _expect(
                b,
                f"{label}{shape}",
                _reduce(b, op, np.zeros(shape, np.float32)),
                np.zeros(0, np.float32),
            )

    def nan(b: ComputeBackend) -> None:
        x = _f32([[1, NAN, 3], [NAN, NAN, NAN], [NAN, INF, -INF]])
        _expect(
            b,
            f"{label} of rows with NaN",
            _reduce(b, op, b.asarray(x)),
            np.full(3, NAN, np.float32),
        )

    def random(b: ComputeBackend) -> None:
        for seed, (rows, width) in enumerate(RANDOM_SHAPES):
            x = _random(seed, rows, width)
            rtol, atol = tolerance(x)
            _expect(
                b,
                f"{label}(random {rows}x{width})",
                _reduce(b, op, b.asarray(x)),
                _reduce(REF, op, x),
                rtol=rtol,
                atol=atol,
            )

    def errors(b: ComputeBackend) -> None:
        for bad in (np.zeros(5), np.zeros((2, 2, 2))):
            _raises(f"{label}(shape {bad.shape})", ValueError, _reduce, b, op, bad)

    return [
        ConformanceCase(f"{label}: edge rows", edge),
        ConformanceCase(f"{label}: float32 out for every input dtype", dtypes),
        ConformanceCase(f"{label}: width-0 rows and empty batches", empty),
        ConformanceCase(f"{label}: NaN propagates", nan),
        ConformanceCase(f"{label}: random arrays with NaN and infinities", random),
        ConformanceCase(f"{label}: non-2-D raises ValueError", errors),
    ]


def _spread_cases() -> list[ConformanceCase]:
    def population(b: ComputeBackend) -> None:
        x = _f32([[2, 4, 4, 4, 5, 5, 7, 9], [1, 1, 1, 1, 1, 1, 1, 1]])
        _expect(b, "row_std is the population std", b.row_std(x), _f32([2, 0]))
        _expect(b, "row_var is the population variance", b.row_var(x), _f32([4, 0]))
        _expect(b, "row_range", b.row_range(x), _f32([7, 0]))
        single = _f32([[-7.5], [0.0], [INF]])
        _expect(b, "row_mean of one column", b.row_mean(single), _f32([-7.5, 0, INF]))
        _expect(b, "row_std of one column", b.row_std(single), _f32([0, 0, NAN]))

    return [ConformanceCase("row_std, row_var, row_range: the policy's values", population)]


def _segment_cases() -> list[ConformanceCase]:
    x = np.arange(18, dtype=np.float32).reshape(6, 3) - 4.0

    def sums(b: ComputeBackend) -> None:
        native = b.asarray(x)
        for offsets in SEGMENT_OFFSETS:
            offs = np.array(offsets, dtype=np.int64)
            want = REF.segment_sum(x, offs)
            _expect(b, f"segment_sum(offsets {list(offsets)})", b.segment_sum(native, offs), want)
            _expect(
                b,
                f"segment_sum(native offsets {list(offsets)})",
                b.segment_sum(native, b.asarray(offs, "int64")),
                want,
            )

    def means(b: ComputeBackend) -> None:
        native = b.asarray(x)
        for offsets in SEGMENT_OFFSETS:
            offs = np.array(offsets, dtype=np.int64)
            _expect(
                b,
                f"segment_mean(offsets {list(offsets)})",
                b.segment_mean(native, offs),
                REF.segment_mean(x, offs),
            )
        _expect(
            b,
            "segment_mean",
            b.segment_mean(x, _i64([0, 2, 2, 6])),
            _f32([[-2.5, -1.5, -0.5], [NAN] * 3, [6.5, 7.5, 8.5]]),
        )

    def edges(b: ComputeBackend) -> None:
        _expect(
            b,
            "segment_sum of width 0",
            b.segment_sum(np.zeros((4, 0), np.float32), _i64([0, 1, 4])),
            np.zeros((2, 0), np.float32),
        )
        _expect(
            b,
            "segment_sum of no rows",
            b.segment_sum(np.zeros((0, 3), np.float32), _i64([0, 0, 0])),
            np.zeros((2, 3), np.float32),
        )
        nan = _f32([[1.0], [NAN], [2.0], [3.0]])
        _expect(
            b,
            "NaN stays in its segment",
            b.segment_sum(nan, _i64([0, 2, 4])),
            _f32([[NAN], [5.0]]),
        )
        _expect(
            b,
            "segment_sum of float16 rows",
            b.segment_sum(x.astype(np.float16), _i64([0, 3, 6])),
            REF.segment_sum(x, _i64([0, 3, 6])),
        )

    def errors(b: ComputeBackend) -> None:
        rows = np.zeros((6, 2), np.float32)
        bad_offsets: Sequence[npt.NDArray[Any]] = (
            np.zeros(0, np.int64),
            _i64([[0, 1]]),
            _f64([0.0, 1.0]),
            _i64([-1, 2]),
            _i64([0, 7]),
            _i64([0, 3, 2]),
        )
        for offs in bad_offsets:
            _raises(
                f"segment_sum(offsets {offs.tolist()})",
                ValueError,
                b.segment_sum,
                rows,
                offs,
            )
            _raises(
                f"segment_mean(offsets {offs.tolist()})",
                ValueError,
                b.segment_mean,
                rows,
                offs,
            )
        _raises(
            "segment_sum(1-D x)",
            ValueError,
            lambda: b.segment_sum(np.zeros(6, np.float32), _i64([0, 6])),
        )

    return [
        ConformanceCase("segment_sum: segments, empty ones included", sums),
        ConformanceCase("segment_mean: sums over row counts, NaN when empty", means),
        ConformanceCase("segment_sum: width 0, no rows, NaN, float16", edges),
        ConformanceCase("segment_sum, segment_mean: bad offsets raise ValueError", errors),
    ]


def _partition_cases() -> list[ConformanceCase]:
    def keys(b: ComputeBackend) -> None:
        for values, n in PARTITION_KEYS:
            k = np.array(values, dtype=np.int64)
            got = b.partition(b.asarray(k, "int64"), n)
            for part, name, want in zip(
                got, ("counts", "offsets", "permutation"), REF.partition(k, n), strict=True
            ):
                _expect(b, f"partition({list(values)}, {n}) {name}", part, want)

    def key_dtypes(b: ComputeBackend) -> None:
        for dtype in ("int8", "uint8", "int16", "int32", "uint64"):
            k = np.array([0, 1, 100, 5, 1, 127], dtype=dtype)
            for n in (3, 300):
                for part, want in zip(b.partition(k, n), REF.partition(k, n), strict=True):
                    _expect(b, f"partition({dtype} keys, {n})", part, want)
        big = np.array([2**64 - 1, 4, 5], dtype=np.uint64)
        _expect(b, "partition(uint64 above 2**63)", b.partition(big, 5)[0], _i64([2, 0, 0, 0, 1]))
        _expect(
            b,
            "partition(negative int8, 300)",
            b.partition(np.array([-3], dtype=np.int8), 300)[1][297:299],
            _i64([0, 1]),
        )
        empty = b.partition(np.array([]), 2)
        for part, values in zip(empty, ([0, 0], [0, 0, 0], []), strict=True):
            _expect(b, "partition of no keys", part, _i64(values))

    def feeds(b: ComputeBackend) -> None:
        k = _i64([1, 0, 1, 2, 0])
        x = _f32([[1.0], [10.0], [100.0], [1000.0], [10000.0]])
        _, offsets, perm = b.partition(k, 4)
        grouped = b.take_rows(b.asarray(x), perm)
        _expect(
            b,
            "segment_sum(take_rows(x, perm), offsets)",
            b.segment_sum(grouped, offsets),
            _f32([[10010.0], [101.0], [1000.0], [0.0]]),
        )

    def errors(b: ComputeBackend) -> None:
        k = _i64([1, 2])
        _raises("partition(keys, 0)", ValueError, lambda: b.partition(k, 0))
        _raises("partition(keys, 2.0)", TypeError, lambda: b.partition(k, 2.0))  # type: ignore[arg-type]
        _raises("partition(keys, True)", TypeError, lambda: b.partition(k, True))
        _raises("partition(float keys, 2)", TypeError, lambda: b.partition(_f64([1.5, 2.0]), 2))
        _raises("partition(2-D keys, 2)", ValueError, lambda: b.partition(_i64([[1, 2]]), 2))

    return [
        ConformanceCase("partition: buckets, offsets, stable permutation", keys),
        ConformanceCase("partition: every integer key dtype, empty keys", key_dtypes),
        ConformanceCase("partition: offsets and permutation feed take_rows and segment_sum", feeds),
        ConformanceCase("partition: bad arguments raise", errors),
    ]


def conformance_cases() -> list[ConformanceCase]:
    """Every case of the suite, in a fixed order, each with a unique name."""
    cases = [
        *_protocol_cases(),
        *_conversion_cases(),
        *_row_cases(),
        *_minmax_cases(),
        *_clip_cases(),
        *(case for op in REDUCTIONS for case in _reduction_cases(op)),
        *_spread_cases(),
        *_segment_cases(),
        *_partition_cases(),
    ]
    return cases
