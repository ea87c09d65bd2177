"""A pipeline's RingLink over the real DeviceRing (interpreted): the host's mirror of the
ring's counters must match the ring's own, under every backpressure strategy, because
the link pops exactly as many rows as the mirror says are there."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydotcompute import BackpressureStrategy, QueueFullError
from pydotcompute.dataflow import RingLink, RingRows
from pydotcompute.stage import RecordBatch, record_ids_for_rows, row_indices

pytest.importorskip("triton")

from pydotcompute_triton import TorchBackend, TritonBackend

pytestmark = pytest.mark.interpreter

WIDTH = 5


def batch(start: int, n: int) -> RecordBatch:
    values = torch.arange(start, start + n, dtype=torch.float32)[:, None].repeat(1, WIDTH)
    return RecordBatch(values=values, record_ids=record_ids_for_rows(start, n, 3))


def link_for(strategy: str, capacity: int) -> RingLink:
    return RingLink(
        TritonBackend(),
        capacity,
        BackpressureStrategy.parse(strategy),
        "consumer",
        lambda: None,
        producer="producer",
    )


def rows_of(taken: RecordBatch | None) -> list[int]:
    if taken is None:
        return []
    assert isinstance(taken.values, torch.Tensor)  # still the backend's array
    index = row_indices(taken.record_ids)
    np.testing.assert_array_equal(taken.values[:, 0].numpy(), index.astype(np.float32))
    return index.tolist()


def assert_mirror(link: RingLink) -> None:
    stats = link.ring.statistics()  # type: ignore[union-attr]
    assert stats.size == len(link)
    assert stats.dropped == link.rows_dropped
    assert stats.popped == stats.pushed - stats.dropped - stats.size


async def test_block_through_a_real_ring() -> None:
    link = link_for("block", 6)
    got: list[int] = []

    async def deliver(rows: RingRows) -> None:
        got.extend(rows_of(link.take(rows)))

    start = 0
    for n in (4, 6, 1, 6, 9):
        b = batch(start, n)
        if n > link.capacity:  # never split: the batch itself goes by reference
            assert not link.holds(b.values)
            got.extend(rows_of(b))
        else:
            assert link.holds(b.values)
            await link.put(b, deliver)
        start += n
    assert got == list(range(26))
    assert_mirror(link)


async def test_reject_and_a_lost_message_through_a_real_ring() -> None:
    link = link_for("reject", 6)
    pending: list[RingRows] = []

    async def deliver(rows: RingRows) -> None:
        if rows.start == 0:
            raise QueueFullError("the host queue refused it")
        pending.append(rows)

    with pytest.raises(QueueFullError):
        await link.put(_held(link, batch(0, 2)), deliver)  # pushed, message refused
    await link.put(_held(link, batch(2, 3)), deliver)
    with pytest.raises(QueueFullError, match="room for 1 rows; a batch of 4"):
        await link.put(_held(link, batch(5, 4)), deliver)  # does not fit: not pushed
    assert link.rows_rejected == 4
    assert_mirror(link)
    assert rows_of(link.take(pending[0])) == [2, 3, 4]
    assert link.rows_skipped == 2
    assert_mirror(link)
    assert len(link) == 0


async def test_drop_oldest_through_a_real_ring() -> None:
    link = link_for("drop_oldest", 5)
    pending: list[RingRows] = []

    async def deliver(rows: RingRows) -> None:
        pending.append(rows)

    start = 0
    for n in (3, 4, 5):
        await link.put(_held(link, batch(start, n)), deliver)
        start += n
        assert_mirror(link)
    assert not link.holds(batch(start, 6).values)  # bigger than the ring: not evicting
    got = [i for rows in pending for i in rows_of(link.take(rows))]
    assert got == [7, 8, 9, 10, 11]
    assert link.rows_dropped == 7
    assert_mirror(link)


def test_backends_make_rings_only_for_their_own_tensors() -> None:
    backend = TritonBackend()
    like = torch.zeros((2, 3))
    ring = backend.make_ring(8, like, "reject")
    assert ring is not None and (ring.capacity, ring.width, ring.dtype) == (8, 3, torch.float32)
    assert ring.backpressure is BackpressureStrategy.REJECT
    assert backend.make_ring(8, np.zeros((2, 3), np.float32), "block") is None
    assert backend.make_ring(8, torch.zeros((2, 3), dtype=torch.bool), "block") is None
    assert backend.make_ring(8, torch.zeros((2, 0)), "block") is None
    assert TorchBackend("meta").make_ring(8, torch.zeros((2, 3), device="meta"), "block") is None


def _held(link: RingLink, b: RecordBatch) -> RecordBatch:
    assert link.holds(b.values)
    return b


async def test_a_triton_pipeline_gives_the_same_results_through_the_wire() -> None:
    """RingRows name their ring, so they survive the wire: in wire-check mode the rows
    still go through the device ring, and the results are those of a plain run."""
    from pydotcompute import Pipeline, PipelineRun, records_from_array
    from pydotcompute.plugins import create_plugin_manager
    from pydotcompute_triton import triton_unavailable_reason

    if triton_unavailable_reason() is not None:
        pytest.skip(triton_unavailable_reason())
    pipeline = (
        Pipeline()
        .add_stage("preprocess", backend="triton")
        .add_stage(  # apart, not fused: between them is a ring
            "compute",
            backend="triton",
            ring_rows=256,
            fuse=False,
            params={"stats": ["mean", "max"]},
        )
    )
    plan = pipeline.validate(create_plugin_manager())
    x = np.random.default_rng(4).standard_normal((300, 8)).astype(np.float32)
    outcomes = []
    for wire_check in (False, True):
        async with PipelineRun(plan, wire_check=wire_check) as run:
            results = [r async for r in run.process(records_from_array(x, batch_size=50, run_id=9))]
            (link,) = run.ring_links()["preprocess"].values()
        assert link.ring is not None and link.ring.statistics().popped == 300
        assert all(type(r.values) is np.ndarray for r in results)
        outcomes.append(
            (
                np.concatenate([r.record_ids for r in results]),
                np.concatenate([r.values for r in results]),
            )
        )
    (plain_ids, plain), (wired_ids, wired) = outcomes
    np.testing.assert_array_equal(wired_ids, plain_ids)  # one worker per stage: in order
    assert wired.tobytes() == plain.tobytes()
