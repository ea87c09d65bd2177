"""Cases for conversion, row plumbing and the element-wise operations: the protocol's
members, asarray/to_numpy, concat_rows, stack_columns, take_rows, minmax_normalize, clip."""

from __future__ import annotations

import numpy as np

from .._protocol import BackendCapabilities, ComputeBackend, check_backend
from ._case import (
    FLOAT_DTYPES,
    INF,
    NAN,
    OTHER_DTYPES,
    RANDOM_SHAPES,
    REF,
    ConformanceCase,
    compare,
    edge_rows,
    expect,
    f32,
    f64,
    host,
    i64,
    raises,
    random_rows,
)

__all__ = ["array_cases"]


def _protocol_cases() -> list[ConformanceCase]:
    def members(b: ComputeBackend) -> None:
        check_backend(b)
        if not isinstance(b.capabilities, BackendCapabilities):
            raise AssertionError("capabilities is not a BackendCapabilities")

    return [ConformanceCase("protocol: name, capabilities and every method", members)]


def _conversion_cases() -> list[ConformanceCase]:
    def defaults(b: ComputeBackend) -> None:
        expect(b, "asarray(list)", b.asarray([[1, 2], [3, 4]]), f32([[1, 2], [3, 4]]))
        expect(b, "asarray(list, 'int64')", b.asarray([1, -2], "int64"), i64([1, -2]))
        native64 = b.asarray(f64([[0.5, 0.1]]), "float64")
        expect(
            b,
            "asarray(native, 'float32')",
            b.asarray(native64, "float32"),
            f32([[0.5, 0.1]]),
        )

    def keep_dtype(b: ComputeBackend) -> None:
        for dtype in (*FLOAT_DTYPES, "int32", "int64"):
            x = np.arange(6).reshape(2, 3).astype(dtype)
            expect(b, f"asarray({dtype} array, None)", b.asarray(x, None), x)
            expect(b, f"asarray(native {dtype}, None)", b.asarray(b.asarray(x, None), None), x)

    def round_trip(b: ComputeBackend) -> None:
        for dtype in (*FLOAT_DTYPES, *OTHER_DTYPES):
            x = np.array([[0, 1, 1], [1, 0, 1]], dtype=dtype)
            expect(b, f"to_numpy(asarray(x, {dtype!r}))", b.asarray(x, dtype), x)
        special = f32([[NAN, INF, -INF, -0.0, 3e38, 1e-45]])
        expect(b, "to_numpy of NaN, infinities and extremes", b.asarray(special), special)

    return [
        ConformanceCase("asarray: float32 by default, named dtypes", defaults),
        ConformanceCase("asarray: dtype None keeps the data's dtype", keep_dtype),
        ConformanceCase("to_numpy: every dtype round-trips", round_trip),
    ]


def _row_cases() -> list[ConformanceCase]:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    c = f32([[NAN, INF, -1.0]])

    def concat(b: ComputeBackend) -> None:
        want = np.concatenate([a, a[:0], c])
        expect(
            b,
            "concat_rows(native parts)",
            b.concat_rows([b.asarray(p) for p in (a, a[:0], c)]),
            want,
        )
        expect(
            b,
            "concat_rows(host and native)",
            b.concat_rows([a, b.asarray(c)]),
            np.concatenate([a, c]),
        )
        expect(b, "concat_rows(one part)", b.concat_rows([b.asarray(a)]), a)
        half = a.astype(np.float16)
        expect(
            b,
            "concat_rows keeps float16",
            b.concat_rows([b.asarray(half, None)] * 2),
            np.concatenate([half, half]),
        )
        raises("concat_rows([])", ValueError, lambda: b.concat_rows([]))

    def stack(b: ComputeBackend) -> None:
        cols = [b.row_sum(b.asarray(a)), i64([7, 8]), b.row_max(b.asarray(a))]
        expect(b, "stack_columns", b.stack_columns(cols), f32([[3, 7, 2], [12, 8, 5]]))
        empty = [b.row_sum(b.asarray(a[:0]))] * 2
        expect(
            b,
            "stack_columns of empty columns",
            b.stack_columns(empty),
            np.zeros((0, 2), np.float32),
        )
        raises("stack_columns([])", ValueError, lambda: b.stack_columns([]))

    def take_native(b: ComputeBackend) -> None:
        x = np.arange(12, dtype=np.float32).reshape(4, 3)
        native = b.asarray(x)
        for index in ([3, 3, 1], [0, 1, 2, 3], [], [2]):
            idx = np.array(index, dtype=np.int64)
            expect(b, f"take_rows(native, {index})", b.take_rows(native, idx), x[idx])
            expect(
                b,
                f"take_rows(native, native {index})",
                b.take_rows(native, b.asarray(idx, "int64")),
                x[idx],
            )
        expect(
            b,
            "take_rows keeps the dtype",
            b.take_rows(b.asarray(x, "float64"), i64([1])),
            x[[1]].astype(np.float64),
        )

    def take_host(b: ComputeBackend) -> None:
        x = np.arange(12, dtype=np.float32).reshape(4, 3)
        for index in (i64([2, 0]), b.asarray([2, 0], "int64")):
            out = b.take_rows(x, index)
            if type(out) is not np.ndarray:
                raise AssertionError(
                    f"take_rows of host rows gave a {type(out).__name__}, not numpy"
                )
            np.testing.assert_array_equal(out, x[[2, 0]], err_msg="take_rows(host rows)")

    def take_errors(b: ComputeBackend) -> None:
        x = b.asarray(np.zeros((3, 2)))
        raises(
            "take_rows(1-D x)",
            ValueError,
            lambda: b.take_rows(b.asarray(np.zeros(3)), i64([0])),
        )
        raises("take_rows(x, 2-D index)", ValueError, lambda: b.take_rows(x, i64([[0]])))
        raises("take_rows(x, float index)", TypeError, lambda: b.take_rows(x, f32([0.0])))

    return [
        ConformanceCase("concat_rows: parts in order, dtype kept", concat),
        ConformanceCase("stack_columns: float32 columns", stack),
        ConformanceCase("take_rows: native rows", take_native),
        ConformanceCase("take_rows: host rows stay numpy", take_host),
        ConformanceCase("take_rows: bad arguments raise", take_errors),
    ]


def _minmax_cases() -> list[ConformanceCase]:
    def policy(b: ComputeBackend) -> None:
        out = host(b, b.minmax_normalize(edge_rows()[:6]))
        compare("the guide's row", out[0], f32([0.0, 0.25, 0.5, 0.75, 1.0]))
        compare("a constant row", out[1], np.zeros(5, np.float32))
        compare("NaN entries", out[3], f32([NAN, 0.0, 1.0, 0.5, NAN]))
        compare("an all-NaN row", out[4], np.full(5, NAN, np.float32))
        compare("one non-NaN value", out[5], f32([NAN, 0.0, NAN, NAN, NAN]))

    def edge(b: ComputeBackend) -> None:
        x = edge_rows()
        expect(
            b,
            "minmax_normalize(edge rows)",
            b.minmax_normalize(b.asarray(x)),
            REF.minmax_normalize(x),
        )

    def dtypes(b: ComputeBackend) -> None:
        base = f32([[1, 2, 4], [3, 3, 3], [NAN, 0.5, 1], [-7, 0.1, 65000]])
        for dtype in FLOAT_DTYPES:
            x = base.astype(dtype)
            expect(
                b,
                f"minmax_normalize({dtype})",
                b.minmax_normalize(b.asarray(x, dtype)),
                REF.minmax_normalize(x),
            )
        for dtype in OTHER_DTYPES:
            x = np.array([[0, 1, 1], [1, 1, 1]], dtype=dtype)
            expect(
                b,
                f"minmax_normalize({dtype})",
                b.minmax_normalize(b.asarray(x, dtype)),
                f32([[0, 1, 1], [0, 0, 0]]),
            )
        # float64 is computed in float64: in float32 these three values are one.
        x = f64([[16777216, 16777217, 16777218]])
        expect(
            b,
            "minmax_normalize(float64 beyond float32)",
            b.minmax_normalize(b.asarray(x, "float64")),
            f64([[0.0, 0.5, 1.0]]),
        )

    def shapes(b: ComputeBackend) -> None:
        for shape in ((0, 5), (3, 0), (0, 0), (1, 1), (1, 7)):
            x = np.arange(shape[0] * shape[1], dtype=np.float32).reshape(shape)
            expect(b, f"minmax_normalize{shape}", b.minmax_normalize(x), REF.minmax_normalize(x))

    def random(b: ComputeBackend) -> None:
        for seed, (rows, width) in enumerate(RANDOM_SHAPES):
            x = random_rows(seed, rows, width)
            expect(
                b,
                f"minmax_normalize(random {rows}x{width})",
                b.minmax_normalize(b.asarray(x)),
                REF.minmax_normalize(x),
            )

    def untouched(b: ComputeBackend) -> None:
        x = f32([[3, 1, 2], [NAN, 5, 5]])
        native = b.asarray(x)
        b.minmax_normalize(native)
        expect(b, "the input after minmax_normalize", native, x)

    def errors(b: ComputeBackend) -> None:
        for bad in (np.zeros(3), np.zeros((2, 2, 2))):
            raises(
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
        x = f32([[-2.0, 0.25, 0.5, 0.75, 9.0], [NAN, -INF, INF, -0.0, 0.3]])
        want = f32([[0.25, 0.25, 0.5, 0.75, 0.75], [NAN, 0.25, 0.75, 0.25, 0.3]])
        expect(b, "clip(x, 0.25, 0.75)", b.clip(b.asarray(x), 0.25, 0.75), want)
        expect(b, "clip to one value", b.clip(x, 1.0, 1.0), np.where(np.isnan(x), x, np.float32(1)))
        expect(b, "clip(x, -inf, inf)", b.clip(x, -INF, INF), x)

    def dtypes(b: ComputeBackend) -> None:
        base = f32([[-1, 0.1, 0.2, 0.3, 0.7, 2], [NAN, 65000, -65000, 1e-8, 0.5, 1]])
        for dtype in FLOAT_DTYPES:
            x = base.astype(dtype)
            for low, high in ((0.1, 0.3), (-1e6, 0.2), (70000.0, 80000.0)):
                expect(
                    b,
                    f"clip({dtype}, {low}, {high})",
                    b.clip(b.asarray(x, dtype), low, high),
                    REF.clip(x, low, high),
                )
        for dtype in OTHER_DTYPES:
            x = np.array([[0, 1, 2], [3, 1, 0]], dtype=dtype)
            expect(
                b,
                f"clip({dtype})",
                b.clip(b.asarray(x, dtype), 0.5, 2.0),
                REF.clip(x, 0.5, 2.0),
                dtype="float32",
            )

    def shapes(b: ComputeBackend) -> None:
        for shape in ((0, 5), (3, 0), (7,), (0,), (2, 3, 4)):
            x = (np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) - 4) / 3
            expect(b, f"clip{shape}", b.clip(b.asarray(x), -0.5, 1.5), REF.clip(x, -0.5, 1.5))

    def random(b: ComputeBackend) -> None:
        for seed, (rows, width) in enumerate(RANDOM_SHAPES):
            x = random_rows(seed, rows, width)
            expect(
                b,
                f"clip(random {rows}x{width})",
                b.clip(b.asarray(x), -5.5, 3.25),
                REF.clip(x, -5.5, 3.25),
            )

    def untouched(b: ComputeBackend) -> None:
        x = f32([[3, -1, 2]])
        native = b.asarray(x)
        b.clip(native, 0.0, 1.0)
        expect(b, "the input after clip", native, x)

    def errors(b: ComputeBackend) -> None:
        x = np.zeros((2, 2), np.float32)
        raises("clip(x, 2, 1)", ValueError, lambda: b.clip(x, 2.0, 1.0))
        raises("clip(x, nan, 1)", ValueError, lambda: b.clip(x, NAN, 1.0))
        raises("clip(x, 0, nan)", ValueError, lambda: b.clip(x, 0.0, NAN))

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


def array_cases() -> list[ConformanceCase]:
    """The cases of this module, in order."""
    return [
        *_protocol_cases(),
        *_conversion_cases(),
        *_row_cases(),
        *_minmax_cases(),
        *_clip_cases(),
    ]
