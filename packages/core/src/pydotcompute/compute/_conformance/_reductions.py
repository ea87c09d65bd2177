"""Cases for the operations that combine rows: the row reductions, segment sums and
means, and partitions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .._protocol import ComputeBackend
from ._case import (
    EXACT_REDUCTIONS,
    FLOAT_DTYPES,
    INF,
    NAN,
    PARTITION_KEYS,
    RANDOM_SHAPES,
    REDUCTIONS,
    REF,
    SEGMENT_OFFSETS,
    SUMMABLE_ROWS,
    ConformanceCase,
    edge_rows,
    expect,
    f32,
    f64,
    i64,
    raises,
    random_rows,
)

__all__ = ["reduction_cases"]


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
        x = edge_rows() if exact else np.array(SUMMABLE_ROWS, dtype=np.float32)
        rtol, atol = (0.0, 0.0) if exact else (2e-6, 1e-20)  # 1e-30**2 underflows in var
        expect(
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
            expect(
                b,
                f"{label}({dtype})",
                _reduce(b, op, b.asarray(x, dtype)),
                _reduce(REF, op, x),
                rtol=1e-6,
                dtype="float64" if dtype == "float64" else "float32",
            )

    def float64(b: ComputeBackend) -> None:
        # Integers past 2**24 are exact in float64 and not in float32: a float32 step
        # anywhere in the backend changes these results.
        x = f64([[16777217, 16777219, 16777221], [2**53 - 2, 2**53 - 4, 2**53 - 6]])
        expect(
            b, f"{label}(float64 beyond float32)", _reduce(b, op, b.asarray(x, "float64")),
            _reduce(REF, op, x), rtol=1e-15 if op in ("var", "std", "mean") else 0.0,
        )  # fmt: skip

    def float16(b: ComputeBackend) -> None:
        # float16 holds integers exactly only up to 2048 and overflows past 65504: a
        # backend that accumulated float16 in float16 would stall on the ones and give
        # inf (or NaN) for the second row, whose float32 sum is 0.
        x = np.zeros((2, 4096), dtype=np.float16)
        x[0] = 1.0
        x[1, :4] = (60000, 60000, -60000, -60000)
        expect(
            b,
            f"{label}(float16 accumulated in float32)",
            _reduce(b, op, b.asarray(x, "float16")),
            _reduce(REF, op, x),
            rtol=1e-6,
            dtype="float32",
        )

    def empty(b: ComputeBackend) -> None:
        expect(
            b,
            f"{label} of width-0 rows",
            _reduce(b, op, np.zeros((4, 0), np.float32)),
            np.zeros(4, np.float32) if op == "sum" else np.full(4, NAN, np.float32),
        )
        for shape in ((0, 3), (0, 0)):
            expect(
                b,
                f"{label}{shape}",
                _reduce(b, op, np.zeros(shape, np.float32)),
                np.zeros(0, np.float32),
            )

    def nan(b: ComputeBackend) -> None:
        x = f32([[1, NAN, 3], [NAN, NAN, NAN], [NAN, INF, -INF]])
        expect(
            b,
            f"{label} of rows with NaN",
            _reduce(b, op, b.asarray(x)),
            np.full(3, NAN, np.float32),
        )

    def random(b: ComputeBackend) -> None:
        for seed, (rows, width) in enumerate(RANDOM_SHAPES):
            x = random_rows(seed, rows, width)
            rtol, atol = tolerance(x)
            expect(
                b,
                f"{label}(random {rows}x{width})",
                _reduce(b, op, b.asarray(x)),
                _reduce(REF, op, x),
                rtol=rtol,
                atol=atol,
            )

    def errors(b: ComputeBackend) -> None:
        for bad in (np.zeros(5), np.zeros((2, 2, 2))):
            raises(f"{label}(shape {bad.shape})", ValueError, _reduce, b, op, bad)

    return [
        ConformanceCase(f"{label}: edge rows", edge),
        ConformanceCase(f"{label}: float64 out for float64 input, else float32", dtypes),
        ConformanceCase(f"{label}: float64 input is computed in float64", float64),
        ConformanceCase(f"{label}: float16 input is accumulated in float32", float16),
        ConformanceCase(f"{label}: width-0 rows and empty batches", empty),
        ConformanceCase(f"{label}: NaN propagates", nan),
        ConformanceCase(f"{label}: random arrays with NaN and infinities", random),
        ConformanceCase(f"{label}: non-2-D raises ValueError", errors),
    ]


def _spread_cases() -> list[ConformanceCase]:
    def population(b: ComputeBackend) -> None:
        x = f32([[2, 4, 4, 4, 5, 5, 7, 9], [1, 1, 1, 1, 1, 1, 1, 1]])
        expect(b, "row_std is the population std", b.row_std(x), f32([2, 0]))
        expect(b, "row_var is the population variance", b.row_var(x), f32([4, 0]))
        expect(b, "row_range", b.row_range(x), f32([7, 0]))
        single = f32([[-7.5], [0.0], [INF]])
        expect(b, "row_mean of one column", b.row_mean(single), f32([-7.5, 0, INF]))
        expect(b, "row_std of one column", b.row_std(single), f32([0, 0, NAN]))

    return [ConformanceCase("row_std, row_var, row_range: the policy's values", population)]


def _segment_cases() -> list[ConformanceCase]:
    x = np.arange(18, dtype=np.float32).reshape(6, 3) - 4.0

    def sums(b: ComputeBackend) -> None:
        native = b.asarray(x)
        for offsets in SEGMENT_OFFSETS:
            offs = np.array(offsets, dtype=np.int64)
            want = REF.segment_sum(x, offs)
            expect(b, f"segment_sum(offsets {list(offsets)})", b.segment_sum(native, offs), want)
            expect(
                b,
                f"segment_sum(native offsets {list(offsets)})",
                b.segment_sum(native, b.asarray(offs, "int64")),
                want,
            )

    def means(b: ComputeBackend) -> None:
        native = b.asarray(x)
        for offsets in SEGMENT_OFFSETS:
            offs = np.array(offsets, dtype=np.int64)
            expect(
                b,
                f"segment_mean(offsets {list(offsets)})",
                b.segment_mean(native, offs),
                REF.segment_mean(x, offs),
            )
        expect(
            b,
            "segment_mean",
            b.segment_mean(x, i64([0, 2, 2, 6])),
            f32([[-2.5, -1.5, -0.5], [NAN] * 3, [6.5, 7.5, 8.5]]),
        )

    def edges(b: ComputeBackend) -> None:
        expect(
            b,
            "segment_sum of width 0",
            b.segment_sum(np.zeros((4, 0), np.float32), i64([0, 1, 4])),
            np.zeros((2, 0), np.float32),
        )
        expect(
            b,
            "segment_sum of no rows",
            b.segment_sum(np.zeros((0, 3), np.float32), i64([0, 0, 0])),
            np.zeros((2, 3), np.float32),
        )
        nan = f32([[1.0], [NAN], [2.0], [3.0]])
        expect(
            b,
            "NaN stays in its segment",
            b.segment_sum(nan, i64([0, 2, 4])),
            f32([[NAN], [5.0]]),
        )
        big = f64([[16777217.0], [2.0], [2.0**53 - 2], [1.0]])
        expect(
            b,
            "segment_sum of float64 rows, in float64",
            b.segment_sum(b.asarray(big, "float64"), i64([0, 2, 3])),
            f64([[16777219.0], [2.0**53 - 2]]),
        )
        expect(
            b,
            "segment_sum of float16 rows",
            b.segment_sum(x.astype(np.float16), i64([0, 3, 6])),
            REF.segment_sum(x, i64([0, 3, 6])),
        )

    def errors(b: ComputeBackend) -> None:
        rows = np.zeros((6, 2), np.float32)
        bad_offsets: Sequence[npt.NDArray[Any]] = (
            np.zeros(0, np.int64),
            i64([[0, 1]]),
            f64([0.0, 1.0]),
            i64([-1, 2]),
            i64([0, 7]),
            i64([0, 3, 2]),
        )
        for offs in bad_offsets:
            raises(
                f"segment_sum(offsets {offs.tolist()})",
                ValueError,
                b.segment_sum,
                rows,
                offs,
            )
            raises(
                f"segment_mean(offsets {offs.tolist()})",
                ValueError,
                b.segment_mean,
                rows,
                offs,
            )
        raises(
            "segment_sum(1-D x)",
            ValueError,
            lambda: b.segment_sum(np.zeros(6, np.float32), i64([0, 6])),
        )

    return [
        ConformanceCase("segment_sum: segments, empty ones included", sums),
        ConformanceCase("segment_mean: sums over row counts, NaN when empty", means),
        ConformanceCase("segment_sum: width 0, no rows, NaN, float64, float16", edges),
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
                expect(b, f"partition({list(values)}, {n}) {name}", part, want)

    def key_dtypes(b: ComputeBackend) -> None:
        for dtype in ("int8", "uint8", "int16", "int32", "uint64"):
            k = np.array([0, 1, 100, 5, 1, 127], dtype=dtype)
            for n in (3, 300):
                for part, want in zip(b.partition(k, n), REF.partition(k, n), strict=True):
                    expect(b, f"partition({dtype} keys, {n})", part, want)
        big = np.array([2**64 - 1, 4, 5], dtype=np.uint64)
        expect(b, "partition(uint64 above 2**63)", b.partition(big, 5)[0], i64([2, 0, 0, 0, 1]))
        expect(
            b,
            "partition(negative int8, 300)",
            b.partition(np.array([-3], dtype=np.int8), 300)[1][297:299],
            i64([0, 1]),
        )
        empty = b.partition(np.array([]), 2)
        for part, values in zip(empty, ([0, 0], [0, 0, 0], []), strict=True):
            expect(b, "partition of no keys", part, i64(values))

    def feeds(b: ComputeBackend) -> None:
        k = i64([1, 0, 1, 2, 0])
        x = f32([[1.0], [10.0], [100.0], [1000.0], [10000.0]])
        _, offsets, perm = b.partition(k, 4)
        grouped = b.take_rows(b.asarray(x), perm)
        expect(
            b,
            "segment_sum(take_rows(x, perm), offsets)",
            b.segment_sum(grouped, offsets),
            f32([[10010.0], [101.0], [1000.0], [0.0]]),
        )

    def errors(b: ComputeBackend) -> None:
        k = i64([1, 2])
        raises("partition(keys, 0)", ValueError, lambda: b.partition(k, 0))
        raises("partition(keys, 2.0)", TypeError, lambda: b.partition(k, 2.0))  # type: ignore[arg-type]
        raises("partition(keys, True)", TypeError, lambda: b.partition(k, True))
        raises("partition(float keys, 2)", TypeError, lambda: b.partition(f64([1.5, 2.0]), 2))
        raises("partition(2-D keys, 2)", ValueError, lambda: b.partition(i64([[1, 2]]), 2))

    return [
        ConformanceCase("partition: buckets, offsets, stable permutation", keys),
        ConformanceCase("partition: every integer key dtype, empty keys", key_dtypes),
        ConformanceCase("partition: offsets and permutation feed take_rows and segment_sum", feeds),
        ConformanceCase("partition: bad arguments raise", errors),
    ]


def reduction_cases() -> list[ConformanceCase]:
    """The cases of this module, in order."""
    return [
        *(case for op in REDUCTIONS for case in _reduction_cases(op)),
        *_spread_cases(),
        *_segment_cases(),
        *_partition_cases(),
    ]
