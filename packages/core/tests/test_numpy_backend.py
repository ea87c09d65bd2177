"""NumpyBackend against plain-Python references written row by row, edge cases included."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pydotcompute.backend import NumpyBackend
from pydotcompute.stage import ComputeBackend

B = NumpyBackend()
F32 = np.float32
NAN = float("nan")
INF = float("inf")


# -- references: one row at a time, the policy spelled out --------------------------------


def ref_minmax_row(row: list[float], scalar: type[np.floating] = F32) -> list[float]:
    """The policy's value of one row, each operation rounded to ``scalar``."""
    finite_or_inf = [scalar(v) for v in row if not math.isnan(v)]
    if not finite_or_inf:
        return [NAN] * len(row)
    lo, hi = min(finite_or_inf), max(finite_or_inf)
    with np.errstate(all="ignore"):
        span = scalar(hi - lo)
        if not span > 0:
            return [NAN if math.isnan(v) else 0.0 for v in row]
        return [float(scalar(scalar(v) - lo) / span) for v in row]


def ref_minmax(x: npt.ArrayLike, dtype: type[np.floating] = np.float32) -> npt.NDArray[Any]:
    arr = np.asarray(x, dtype=dtype)
    return np.array(
        [ref_minmax_row([float(v) for v in row], dtype) for row in arr], dtype=dtype
    ).reshape(arr.shape)


def ref_row(x: npt.ArrayLike, op: str) -> npt.NDArray[np.float64]:
    """Float64 reference of a row reduction; NaN in a row (or inf - inf) gives NaN."""
    out = []
    for row in np.asarray(x, dtype=np.float64):
        vals = [float(v) for v in row]
        if op == "sum":
            out.append(math.fsum(vals) if not any(math.isnan(v) for v in vals) else NAN)
            continue
        if not vals or any(math.isnan(v) for v in vals):
            out.append(NAN)
            continue
        if op == "mean":
            out.append(_fsum_inf(vals) / len(vals))
        elif op == "min":
            out.append(min(vals))
        elif op == "max":
            out.append(max(vals))
        elif op == "range":
            out.append(max(vals) - min(vals))  # inf - inf is NaN in Python too
        elif op in ("std", "var"):
            mean = _fsum_inf(vals) / len(vals)
            if math.isinf(mean) or math.isnan(mean):
                out.append(NAN)
                continue
            var = math.fsum((v - mean) ** 2 for v in vals) / len(vals)
            out.append(math.sqrt(var) if op == "std" else var)
    return np.array(out, dtype=np.float64)


def _fsum_inf(vals: list[float]) -> float:
    pos, neg = any(v == INF for v in vals), any(v == -INF for v in vals)
    if pos and neg:
        return NAN
    if pos:
        return INF
    if neg:
        return -INF
    return math.fsum(vals)


def assert_same(actual: npt.NDArray[np.floating], expected: npt.ArrayLike) -> None:
    np.testing.assert_array_equal(actual, np.asarray(expected, dtype=actual.dtype))


# -- the protocol -------------------------------------------------------------------------


def test_satisfies_the_protocol_and_is_named_numpy() -> None:
    assert isinstance(B, ComputeBackend)
    assert B.name == "numpy"


def test_asarray_and_to_numpy_round_trip() -> None:
    a = B.asarray([[1, 2], [3, 4]])
    assert a.dtype == np.float32 and a.shape == (2, 2)
    assert B.asarray([1, 2], dtype="int64").dtype == np.int64
    np.testing.assert_array_equal(B.to_numpy(a), [[1, 2], [3, 4]])
    assert isinstance(B.to_numpy(a), np.ndarray)


# -- minmax_normalize ---------------------------------------------------------------------

EDGE_ROWS = [
    [1.0, 2.0, 3.0, 4.0, 5.0],  # the guide's example
    [5.0, 5.0, 5.0, 5.0, 5.0],  # constant -> zeros
    [-3.0, 0.0, 3.0, 1.5, -1.5],
    [NAN, 1.0, 3.0, 2.0, NAN],  # NaN stays NaN, others use the non-NaN range
    [NAN, NAN, NAN, NAN, NAN],  # all NaN -> all NaN
    [NAN, 7.0, NAN, NAN, NAN],  # single non-NaN -> degenerate: 0.0 and NaN
    [-INF, 0.0, 1.0, 2.0, 3.0],  # infinite range: IEEE arithmetic of the formula
    [INF, INF, INF, INF, INF],  # inf - inf range: degenerate -> zeros
    [-INF, INF, 0.0, 1.0, NAN],
    [1e-30, 2e-30, 3e-30, 4e-30, 5e-30],  # tiny but positive range
    [-3e38, 3e38, 0.0, 1.0, 2.0],  # range overflows to inf
]


def test_minmax_matches_reference_on_edge_rows() -> None:
    x = np.array(EDGE_ROWS, dtype=np.float32)
    out = B.minmax_normalize(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    assert_same(out, ref_minmax(x))


def test_minmax_policy_values_spelled_out() -> None:
    out = B.minmax_normalize(np.array(EDGE_ROWS[:6], dtype=np.float32))
    assert_same(out[0], [0.0, 0.25, 0.5, 0.75, 1.0])
    assert_same(out[1], [0.0] * 5)
    assert_same(out[3], [NAN, 0.0, 1.0, 0.5, NAN])
    assert np.isnan(out[4]).all()
    assert_same(out[5], [NAN, 0.0, NAN, NAN, NAN])


def test_minmax_does_not_modify_input() -> None:
    x = np.array([[3.0, 1.0, 2.0]], dtype=np.float32)
    B.minmax_normalize(x)
    assert_same(x, [[3.0, 1.0, 2.0]])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_minmax_keeps_float_dtype_and_computes_in_the_compute_dtype(
    dtype: type[np.floating],
) -> None:
    x = np.array([[1.0, 2.0, 4.0], [3.0, 3.0, 3.0], [NAN, 0.5, 1.0]], dtype=dtype)
    out = B.minmax_normalize(x)
    assert out.dtype == dtype
    compute = np.float64 if dtype == np.float64 else np.float32
    expected = ref_minmax(x, compute).astype(dtype)
    assert_same(out, expected)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_])
def test_minmax_of_integers_and_bools_is_float32(dtype: type[np.generic]) -> None:
    x = np.array([[0, 1, 1], [1, 1, 1]], dtype=dtype)
    out = B.minmax_normalize(x)
    assert out.dtype == np.float32
    assert_same(out, [[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])


@pytest.mark.parametrize("shape", [(0, 5), (3, 0), (0, 0), (1, 1), (1, 7)])
def test_minmax_empty_width_zero_and_single(shape: tuple[int, int]) -> None:
    x = np.arange(shape[0] * shape[1], dtype=np.float32).reshape(shape)
    out = B.minmax_normalize(x)
    assert out.shape == shape and out.dtype == np.float32
    assert_same(out, ref_minmax(x))


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((2, 2, 2)), 1.0])
def test_minmax_rejects_non_2d(bad: object) -> None:
    with pytest.raises(ValueError, match="minmax_normalize takes a 2-D array"):
        B.minmax_normalize(bad)


finite_or_special = st.one_of(
    st.floats(width=32, allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, -1.0, NAN]),
)


@settings(max_examples=200, deadline=None)
@given(
    x=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=9),
        elements=finite_or_special,
    )
)
def test_minmax_matches_reference_on_random_arrays(x: npt.NDArray[np.float32]) -> None:
    assert_same(B.minmax_normalize(x), ref_minmax(x))


# -- clip ---------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    x=hnp.arrays(
        st.sampled_from([np.float16, np.float32, np.float64]),
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6),
        elements=st.floats(-6e4, 6e4, width=16) | st.sampled_from([NAN, INF, -INF]),
    ),
    bounds=st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=2).map(sorted),
)
def test_clip_matches_reference(x: npt.NDArray[np.floating], bounds: list[float]) -> None:
    low, high = bounds
    out = B.clip(x, low, high)
    assert out.dtype == x.dtype and out.shape == x.shape
    with np.errstate(over="ignore"):
        lo, hi = x.dtype.type(low), x.dtype.type(high)  # the bounds rounded to the dtype
    expected = [NAN if math.isnan(v) else min(max(v, lo), hi) for v in x.ravel().tolist()]
    assert_same(out.ravel(), expected)


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.bool_])
def test_clip_of_integers_and_bools_is_float32(dtype: type[np.generic]) -> None:
    out = B.clip(np.array([[0, 1], [1, 0]], dtype=dtype), 0.25, 0.5)
    assert out.dtype == np.float32
    assert_same(out, [[0.25, 0.5], [0.5, 0.25]])


@pytest.mark.parametrize(
    ("low", "high", "match"),
    [(2.0, 1.0, r"clip low \(2.0\) is above high \(1.0\)"), (NAN, 1.0, "must not be NaN")],
)
def test_clip_rejects_bad_bounds(low: float, high: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        B.clip(np.zeros(3), low, high)


# -- rows -----------------------------------------------------------------------------------


def test_take_rows_gathers_in_order_and_checks_its_arguments() -> None:
    x = np.arange(8, dtype=np.float16).reshape(4, 2)
    out = B.take_rows(x, np.array([3, 0, 3]))
    assert out.dtype == np.float16
    assert_same(out, [[6, 7], [0, 1], [6, 7]])
    assert B.take_rows(x, []).shape == (0, 2)
    with pytest.raises(ValueError, match="take_rows takes a 2-D array"):
        B.take_rows(np.zeros(3), [0])
    with pytest.raises(TypeError, match="take_rows index must be integers"):
        B.take_rows(x, [0.5])


def test_asarray_with_dtype_none_keeps_the_dtype_and_does_not_copy() -> None:
    x = np.arange(3, dtype=np.int16)
    assert B.asarray(x, None) is x
    assert B.asarray([1.5], None).dtype == np.float64


# -- row reductions -----------------------------------------------------------------------

REDUCTIONS = ["sum", "mean", "min", "max", "std", "var", "range"]


def run_reduction(op: str, x: npt.ArrayLike) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32] = getattr(B, f"row_{op}")(x)
    return out


@pytest.mark.parametrize("op", REDUCTIONS)
def test_reductions_on_edge_rows(op: str) -> None:
    x = np.array(EDGE_ROWS[:10], dtype=np.float32)
    out = run_reduction(op, x)
    assert out.dtype == np.float32 and out.shape == (len(x),)
    # atol: float32 squares of the 1e-30 row underflow to 0 in row_std.
    np.testing.assert_allclose(out, ref_row(x, op), rtol=2e-6, atol=1e-20, equal_nan=True)


@pytest.mark.parametrize("op", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64])
def test_reductions_return_float64_for_float64_and_float32_for_the_rest(
    op: str, dtype: type[np.generic]
) -> None:
    x = np.array([[1, 2, 3, 4], [5, 5, 5, 5], [-2, 0, 2, 8]], dtype=dtype)
    out = run_reduction(op, x)
    assert out.dtype == (np.float64 if dtype == np.float64 else np.float32)
    np.testing.assert_allclose(out, ref_row(x, op), rtol=1e-6)


@pytest.mark.parametrize("op", ["min", "max", "sum", "range"])
def test_float64_reductions_are_exact_past_float32(op: str) -> None:
    x = np.array([[16777217.0, 16777219.0, 16777221.0], [2.0**53 - 2, 1.0, 1.0]])
    np.testing.assert_array_equal(run_reduction(op, x), ref_row(x, op))


@pytest.mark.parametrize("op", REDUCTIONS)
def test_reductions_of_width_zero_rows(op: str) -> None:
    out = run_reduction(op, np.zeros((4, 0), dtype=np.float32))
    expected = np.zeros(4) if op == "sum" else np.full(4, NAN)
    assert out.dtype == np.float32
    assert_same(out, expected)


@pytest.mark.parametrize("op", REDUCTIONS)
@pytest.mark.parametrize("shape", [(0, 3), (0, 0)])
def test_reductions_of_empty_batches(op: str, shape: tuple[int, int]) -> None:
    out = run_reduction(op, np.zeros(shape, dtype=np.float32))
    assert out.shape == (0,) and out.dtype == np.float32


@pytest.mark.parametrize("op", REDUCTIONS)
def test_reductions_propagate_nan(op: str) -> None:
    out = run_reduction(op, np.array([[1.0, NAN, 3.0], [NAN, NAN, NAN]], dtype=np.float32))
    assert np.isnan(out).all()


def test_std_is_population_std() -> None:
    out = B.row_std(np.array([[2, 4, 4, 4, 5, 5, 7, 9], [1, 1, 1, 1, 1, 1, 1, 1]]))
    assert_same(out, [2.0, 0.0])


def test_mean_of_single_column_is_the_column() -> None:
    x = np.array([[-7.5], [0.0], [INF]], dtype=np.float32)
    assert_same(B.row_mean(x), [-7.5, 0.0, INF])
    assert_same(B.row_std(x), [0.0, 0.0, NAN])


@pytest.mark.parametrize("op", REDUCTIONS)
def test_reductions_reject_non_2d(op: str) -> None:
    with pytest.raises(ValueError, match=f"row_{op} takes a 2-D array"):
        run_reduction(op, np.zeros(5))


@settings(max_examples=150, deadline=None)
@given(
    x=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=12),
        elements=st.floats(-1e6, 1e6, width=32),
    )
)
def test_reductions_match_float64_reference_on_random_arrays(x: npt.NDArray[np.float32]) -> None:
    for op in REDUCTIONS:
        expected = ref_row(x, op)
        scale = np.abs(x).max(initial=0.0) * max(x.shape[1], 1)
        np.testing.assert_allclose(
            # 1e-18: float32 squares in row_std underflow for values below ~1e-19.
            run_reduction(op, x),
            expected,
            rtol=1e-5,
            atol=1e-6 * scale + 1e-18,
            equal_nan=True,
        )


# -- segment_sum --------------------------------------------------------------------------


def ref_segment_sum(x: npt.ArrayLike, offsets: list[int]) -> npt.NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    width = arr.shape[1]
    out = []
    for a, b in itertools.pairwise(offsets):
        out.append([math.fsum(arr[r, c] for r in range(a, b)) for c in range(width)])
    return np.array(out, dtype=np.float64).reshape(len(offsets) - 1, width)


@pytest.mark.parametrize(
    "offsets",
    [
        [0, 2, 5, 6],
        [0, 0, 3, 3, 6],  # empty segments first, in the middle
        [0, 6, 6, 6],  # empty segments at the end (their start == len(x))
        [1, 4],  # rows outside offsets[0]:offsets[-1] are ignored
        [2, 2],  # one empty segment
        [0],  # no segments at all
        [0, 1, 2, 3, 4, 5, 6],  # n=1 segments
        [3, 3, 3],  # all empty
    ],
)
def test_segment_sum_matches_reference(offsets: list[int]) -> None:
    x = np.arange(18, dtype=np.float32).reshape(6, 3) - 4.0
    out = B.segment_sum(x, np.array(offsets))
    assert out.dtype == np.float32 and out.shape == (len(offsets) - 1, 3)
    assert_same(out, ref_segment_sum(x, offsets))


def test_segment_sum_of_width_zero_and_empty_batch() -> None:
    assert B.segment_sum(np.zeros((4, 0)), [0, 1, 4]).shape == (2, 0)
    out = B.segment_sum(np.zeros((0, 3)), [0, 0, 0])
    assert_same(out, np.zeros((2, 3)))


def test_segment_sum_propagates_nan_only_into_its_segment() -> None:
    x = np.array([[1.0], [NAN], [2.0], [3.0]], dtype=np.float32)
    assert_same(B.segment_sum(x, [0, 2, 4]), [[NAN], [5.0]])


@pytest.mark.parametrize(
    ("offsets", "match"),
    [
        ([], "at least one entry"),
        ([[0, 1]], "at least one entry"),
        ([0.0, 1.0], "must be integers"),
        ([-1, 2], "non-decreasing and within"),
        ([0, 7], "non-decreasing and within"),
        ([0, 3, 2], "non-decreasing and within"),
    ],
)
def test_segment_sum_rejects_bad_offsets(offsets: list[object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        B.segment_sum(np.zeros((6, 2)), np.array(offsets))


@settings(max_examples=100, deadline=None)
@given(
    data=st.data(),
    rows=st.integers(0, 20),
    width=st.integers(0, 4),
)
def test_segment_sum_on_random_segments(data: st.DataObject, rows: int, width: int) -> None:
    x = data.draw(hnp.arrays(np.float32, (rows, width), elements=st.integers(-100, 100)))
    cuts = sorted(data.draw(st.lists(st.integers(0, rows), min_size=1, max_size=8)))
    assert_same(B.segment_sum(x, np.array(cuts)), ref_segment_sum(x, cuts))


@settings(max_examples=100, deadline=None)
@given(data=st.data(), rows=st.integers(0, 20), width=st.integers(0, 4))
def test_segment_mean_on_random_segments(data: st.DataObject, rows: int, width: int) -> None:
    x = data.draw(hnp.arrays(np.float32, (rows, width), elements=st.integers(-100, 100)))
    cuts = sorted(data.draw(st.lists(st.integers(0, rows), min_size=1, max_size=8)))
    lengths = np.diff(np.array(cuts, dtype=np.float64))[:, None]
    with np.errstate(invalid="ignore"):  # an empty segment: 0 / 0, NaN by policy
        expected = (ref_segment_sum(x, cuts) / lengths).astype(np.float32)
    assert_same(B.segment_mean(x, np.array(cuts)), expected)


# -- partition ----------------------------------------------------------------------------


def ref_partition(keys: list[int], n: int) -> tuple[list[int], list[int], list[int]]:
    buckets: list[list[int]] = [[] for _ in range(n)]
    for i, k in enumerate(keys):
        buckets[k % n].append(i)  # Python modulo, original order kept
    counts = [len(b) for b in buckets]
    offsets = [0]
    for c in counts:
        offsets.append(offsets[-1] + c)
    return counts, offsets, [i for b in buckets for i in b]


@pytest.mark.parametrize(
    ("keys", "n"),
    [
        ([5, 3, 8, 1, 0, 4, 4, 9], 3),
        ([-1, -2, -3, -4, 7, -7], 4),  # negative keys land in [0, n)
        ([3, 3, 3, 3], 2),  # one bucket full, one empty; stability visible
        ([10, 20, 30], 1),  # n=1: everything in bucket 0, order kept
        ([], 3),  # empty
        ([2**62, -(2**62), 123456789012], 7),  # large keys
    ],
)
def test_partition_matches_reference(keys: list[int], n: int) -> None:
    counts, offsets, perm = B.partition(np.array(keys, dtype=np.int64), n)
    for arr in (counts, offsets, perm):
        assert arr.dtype == np.int64
    assert (counts.tolist(), offsets.tolist(), perm.tolist()) == ref_partition(keys, n)


def test_partition_offsets_feed_segment_sum() -> None:
    keys = np.array([1, 0, 1, 2, 0])
    x = np.array([[1.0], [10.0], [100.0], [1000.0], [10000.0]], dtype=np.float32)
    _, offsets, perm = B.partition(keys, 4)
    assert_same(B.segment_sum(x[perm], offsets), [[10010.0], [101.0], [1000.0], [0.0]])


def test_partition_accepts_unsigned_and_small_int_keys() -> None:
    counts, _, perm = B.partition(np.array([2**64 - 1, 4, 5], dtype=np.uint64), 5)
    assert counts.tolist() == [2, 0, 0, 0, 1]  # (2**64 - 1) % 5 == 0
    assert perm.tolist() == [0, 2, 1]
    counts8, _, _ = B.partition(np.array([-1, 1], dtype=np.int8), 2)
    assert counts8.tolist() == [0, 2]


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32])
def test_partition_with_more_buckets_than_the_key_dtype_can_hold(dtype: type) -> None:
    # n = 70_000 is out of range for every key dtype here; a narrow modulo would
    # overflow (NumPy 2) or bucket differently from the device backends.
    keys = [0, 1, 100, 5, 1]
    counts, offsets, perm = B.partition(np.array(keys, dtype=dtype), 70_000)
    assert (counts.tolist(), offsets.tolist(), perm.tolist()) == ref_partition(keys, 70_000)
    counts_neg, _, _ = B.partition(np.array([-3], dtype=np.int8), 300)
    assert np.flatnonzero(counts_neg).tolist() == [297]


@pytest.mark.parametrize(
    ("keys", "n", "exc", "match"),
    [
        ([1, 2], 0, ValueError, "at least 1"),
        ([1, 2], -2, ValueError, "at least 1"),
        ([1, 2], 2.0, TypeError, "n must be an int"),
        ([1, 2], True, TypeError, "n must be an int"),
        ([1.5, 2.0], 2, TypeError, "keys must be integers"),
        ([[1, 2]], 2, ValueError, "keys must be 1-D"),
    ],
)
def test_partition_rejects_bad_arguments(
    keys: list[object], n: object, exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        B.partition(np.array(keys), n)  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(keys=st.lists(st.integers(-(2**40), 2**40), max_size=40), n=st.integers(1, 9))
def test_partition_on_random_keys(keys: list[int], n: int) -> None:
    counts, offsets, perm = B.partition(np.array(keys, dtype=np.int64), n)
    assert (counts.tolist(), offsets.tolist(), perm.tolist()) == ref_partition(keys, n)


def test_to_host_keeps_a_numpy_array_and_asks_the_backend_otherwise() -> None:
    from pydotcompute.backend import to_host

    class Recording(NumpyBackend):
        calls = 0

        def to_numpy(self, x: Any) -> Any:
            Recording.calls += 1
            return super().to_numpy(x)

    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert to_host(Recording(), x) is x and Recording.calls == 0
    assert to_host(Recording(), [[1, 2]]).tolist() == [[1, 2]] and Recording.calls == 1
