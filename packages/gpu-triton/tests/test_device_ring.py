"""DeviceRing, interpreted, against a collections.deque model of the same ring."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydotcompute import BackpressureStrategy

pytest.importorskip("triton")

from pydotcompute_triton import DeviceRing, DeviceRingStatistics
from pydotcompute_triton.ops import _ring_layout

pytestmark = pytest.mark.interpreter


def records(ids: list[int], width: int, dtype: torch.dtype) -> torch.Tensor:
    """Row of record `id`: id * 16 + column % 16 (exact in float32 for the ids used here)."""
    idx = torch.tensor(ids, dtype=torch.float64)[:, None]
    cols = torch.arange(width, dtype=torch.float64)[None, :]
    return (idx * 16 + cols % 16).to(dtype)


def check_statistics(ring: DeviceRing, model: Any) -> None:
    st_ = ring.statistics()
    assert (st_.size, st_.pushed, st_.popped, st_.dropped, st_.rejected) == (
        len(model.items),
        model.pushed,
        model.popped,
        model.dropped,
        model.rejected,
    )
    assert st_.pushed - st_.popped - st_.dropped == st_.size
    assert int(ring._state[_ring_layout.TICKET.value]) == 0  # the last program reset it


operations = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(0, 40)),
        st.tuples(st.just("pop"), st.integers(0, 20)),
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    capacity=st.integers(1, 16),
    width=st.sampled_from([1, 3, 17, 300]),
    policy=st.sampled_from(["block", "reject", "drop_oldest"]),
    meta_width=st.integers(0, 2),
    ops=operations,
)
def test_matches_deque_model(
    capacity: int,
    width: int,
    policy: str,
    meta_width: int,
    ops: list[tuple[str, int]],
    ring_model: Any,
) -> None:
    ring = DeviceRing(capacity, width, backpressure=policy, meta_width=meta_width)
    model = ring_model(capacity, policy)
    next_id = 0
    for op, n in ops:
        if op == "push":
            ids = list(range(next_id, next_id + n))
            next_id += n
            meta = torch.tensor([[i, -i] for i in ids], dtype=torch.int64).reshape(n, 2)
            got = ring.push(
                records(ids, width, ring.dtype), meta[:, :meta_width] if meta_width else None
            )
            assert got == model.push(ids)
        else:
            rows, meta = ring.pop_with_meta(n)
            expected = model.pop(n)
            assert torch.equal(rows, records(expected, width, ring.dtype))
            assert meta.shape == (len(expected), meta_width)
            if meta_width:
                assert meta[:, 0].tolist() == expected
            if meta_width == 2:
                assert meta[:, 1].tolist() == [-i for i in expected]
        check_statistics(ring, model)
    assert len(ring) == len(model.items)


def test_wraps_around_many_times(ring_model: Any) -> None:
    ring = DeviceRing(5, 4, meta_width=1)
    model = ring_model(5, "block")
    next_id = 0
    for step in range(12):
        n = 3 if step % 2 == 0 else 2
        ids = list(range(next_id, next_id + n))
        next_id += n
        assert ring.push(records(ids, 4, torch.float32), torch.tensor(ids)[:, None]) == model.push(
            ids
        )
        rows, meta = ring.pop_with_meta(2)
        expected = model.pop(2)
        assert meta[:, 0].tolist() == expected and torch.equal(
            rows, records(expected, 4, torch.float32)
        )
    check_statistics(ring, model)
    assert ring.pushed > ring.capacity * 3  # really went around


@pytest.mark.parametrize("policy", ["block", "reject"])
def test_full_ring_accepts_nothing_and_never_overwrites(policy: str) -> None:
    ring = DeviceRing(4, 2, backpressure=policy)
    assert ring.push(records([0, 1, 2], 2, torch.float32)) == 3
    assert ring.push(records([3, 4, 5], 2, torch.float32)) == 1  # only what fits
    assert ring.push(records([6], 2, torch.float32)) == 0
    assert torch.equal(ring.pop(10), records([0, 1, 2, 3], 2, torch.float32))
    assert ring.rejected == (3 if policy == "reject" else 0)
    assert ring.dropped == 0


def test_drop_oldest_keeps_the_latest_rows() -> None:
    ring = DeviceRing(4, 3, backpressure="drop_oldest", meta_width=1)
    ids = list(range(10))
    assert ring.push(records(ids, 3, torch.float32), torch.tensor(ids)[:, None]) == 10
    rows, meta = ring.pop_with_meta(10)
    assert meta[:, 0].tolist() == [6, 7, 8, 9]
    assert torch.equal(rows, records([6, 7, 8, 9], 3, torch.float32))
    stats = ring.statistics()
    assert stats == DeviceRingStatistics(
        size=0,
        capacity=4,
        backpressure=BackpressureStrategy.DROP_OLDEST,
        pushed=10,
        popped=4,
        dropped=6,
        rejected=0,
    )


def test_drop_oldest_evicts_across_the_wrap() -> None:
    ring = DeviceRing(5, 2, backpressure="drop_oldest")
    ring.push(records([0, 1, 2, 3], 2, torch.float32))
    ring.pop(3)
    ring.push(records([4, 5, 6, 7, 8, 9], 2, torch.float32))  # evicts 3, 4
    assert torch.equal(ring.pop(5), records([5, 6, 7, 8, 9], 2, torch.float32))
    assert ring.dropped == 2


def test_empty_ring_pops_nothing() -> None:
    ring = DeviceRing(3, 5)
    out = ring.pop(2)
    assert out.shape == (0, 5) and out.dtype == torch.float32
    assert len(ring) == 0 and ring.popped == 0


def test_many_programs_in_one_launch() -> None:
    # width 1000 uses 4-row tiles: 250 rows are 63 programs sharing one ticket.
    ring = DeviceRing(250, 1000, meta_width=2)
    ids = list(range(250))
    meta = torch.tensor([[i, i * 7] for i in ids])
    assert ring.push(records(ids, 1000, torch.float32), meta) == 250
    assert ring.push(records([999], 1000, torch.float32), meta[:1]) == 0
    rows, got_meta = ring.pop_with_meta(250)
    assert torch.equal(rows, records(ids, 1000, torch.float32)) and torch.equal(got_meta, meta)


@pytest.mark.parametrize(
    "dtype",
    [
        torch.float32,
        torch.float16,
        torch.bfloat16,
        torch.float64,
        torch.int16,
        torch.int32,
        torch.int64,
    ],
)
def test_rows_round_trip_bit_for_bit(dtype: torch.dtype) -> None:
    ring = DeviceRing(8, 6, dtype=dtype)
    if dtype.is_floating_point:
        vals = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 1e-40, 3.0])
        rows = torch.stack([vals, vals.flip(0)]).to(dtype)
    else:
        info = torch.iinfo(dtype)
        rows = torch.tensor([[info.min, info.max, -1, 0, 1, 2]] * 2, dtype=dtype)
    ring.push(rows)
    out = ring.pop(8)
    assert out.dtype == dtype
    bits = {2: torch.int16, 4: torch.int32, 8: torch.int64}[rows.element_size()]
    assert torch.equal(out.view(bits), rows.view(bits))


def test_strided_rows_and_meta_are_pushed_in_order() -> None:
    ring = DeviceRing(10, 3, meta_width=2)
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    rows = base.t()[::2, :3]  # (5, 3), row stride 2, column stride 10
    meta = torch.arange(20).reshape(2, 10).t()[::2]  # (5, 2), strides (2, 10)
    assert not rows.is_contiguous() and not meta.is_contiguous()
    ring.push(rows, meta)
    got_rows, got_meta = ring.pop_with_meta(5)
    assert torch.equal(got_rows, rows) and torch.equal(got_meta, meta)


def test_device_calls_do_not_return_host_counts() -> None:
    ring = DeviceRing(4, 2)
    accepted = ring.push_device(torch.ones((6, 2)))
    assert isinstance(accepted, torch.Tensor) and accepted.tolist() == [4]
    rows, meta, count = ring.pop_device(10)
    assert rows.shape == (4, 2) and meta.shape == (4, 0) and count.tolist() == [4]
    assert ring.push_device(torch.ones((0, 2))).tolist() == [0]
    rows, _, count = ring.pop_device(0)
    assert rows.shape == (0, 2) and count.tolist() == [0]


def test_describes_itself() -> None:
    ring = DeviceRing(4, 2, dtype=torch.bfloat16, backpressure="REJECT", meta_width=2)
    assert (ring.capacity, ring.width, ring.meta_width, ring.dtype) == (4, 2, 2, torch.bfloat16)
    assert ring.backpressure is BackpressureStrategy.REJECT
    assert ring.device == torch.device("cpu")
    assert "capacity=4" in repr(ring) and "'reject'" in repr(ring)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"capacity": 0, "width": 2}, ValueError, "capacity must be at least 1; got 0"),
        ({"capacity": 2, "width": 0}, ValueError, "width must be at least 1"),
        (
            {"capacity": 2, "width": 2, "meta_width": -1},
            ValueError,
            "meta_width must be at least 0",
        ),
        ({"capacity": 2.0, "width": 2}, TypeError, "capacity must be an int; got float"),
        ({"capacity": 2, "width": 2, "dtype": torch.uint8}, TypeError, "dtype must be one of"),
        ({"capacity": 2, "width": 2, "backpressure": "wait"}, ValueError, "unknown backpressure"),
    ],
)
def test_rejects_bad_construction(kwargs: dict[str, Any], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        DeviceRing(**kwargs)


def test_rejects_bad_pushes_and_pops() -> None:
    ring = DeviceRing(4, 3, meta_width=1)
    with pytest.raises(ValueError, match=r"rows must have shape \(n, 3\); got \(2, 4\)"):
        ring.push(torch.zeros((2, 4)), torch.zeros((2, 1), dtype=torch.int64))
    with pytest.raises(TypeError, match=r"rows must be torch\.float32; got torch\.float64"):
        ring.push(torch.zeros((2, 3), dtype=torch.float64), torch.zeros((2, 1), dtype=torch.int64))
    with pytest.raises(ValueError, match=r"needs meta of shape \(2, 1\)"):
        ring.push(torch.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"meta must have shape \(2, 1\); got \(2, 2\)"):
        ring.push(torch.zeros((2, 3)), torch.zeros((2, 2), dtype=torch.int64))
    with pytest.raises(TypeError, match=r"meta must be torch\.int64; got torch\.int32"):
        ring.push(torch.zeros((2, 3)), torch.zeros((2, 1), dtype=torch.int32))
    with pytest.raises(TypeError, match=r"rows must be a torch\.Tensor; got list"):
        ring.push([[0.0, 0.0, 0.0]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_rows must be at least 0; got -1"):
        ring.pop(-1)
    with pytest.raises(TypeError, match="max_rows must be an int; got float"):
        ring.pop(1.0)  # type: ignore[arg-type]
    plain = DeviceRing(4, 3)
    with pytest.raises(ValueError, match="got meta, but the ring has meta_width=0"):
        plain.push(torch.zeros((1, 3)), torch.zeros((1, 1), dtype=torch.int64))
    assert len(ring) == 0 and len(plain) == 0  # nothing was half-pushed
