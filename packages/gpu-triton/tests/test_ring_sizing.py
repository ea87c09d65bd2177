"""Links between torch/Triton stages sized from the traffic (issue 11, items 1 and 2).

``ring_rows = "auto"`` (the default) passes batches by reference, bounded in rows on the
host; a numbered ``ring_rows`` asks for a device ring, which planning refuses when it
cannot hold two of the largest batch the stage feeding it declares (``max_batch_rows``).
A batch bigger than a ring is never split, refused or evicted for its size.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydotcompute import Pipeline, PipelineRun, PipelineValidationError
from pydotcompute.plugins import create_plugin_manager
from pydotcompute.stage import RecordBatch, record_ids_for_rows, row_indices


def two_stages(backend: str = "torch", **compute: object) -> Pipeline:
    return (
        Pipeline("sized")
        .add_stage("preprocess", backend=backend, max_batch_rows=1000)
        .add_stage("compute", backend=backend, fuse=False, params={"stats": ["max"]}, **compute)
    )


def test_a_ring_that_cannot_hold_two_of_the_largest_batch_is_refused_at_validation() -> None:
    with pytest.raises(PipelineValidationError) as caught:
        two_stages(ring_rows=1999).validate(create_plugin_manager())
    message = str(caught.value)
    assert "'compute'" in message and "ring_rows = 1999" in message
    assert "two batches of 1000 rows" in message and "'preprocess'" in message
    assert "at least 2000" in message


def test_a_ring_that_holds_two_of_the_largest_batch_is_accepted() -> None:
    plan = two_stages(ring_rows=2000).validate(create_plugin_manager())
    assert plan["compute"].ring_rows == 2000 and plan["preprocess"].max_batch_rows == 1000


def test_the_toml_form_points_at_the_ring_rows_line(tmp_path: object) -> None:
    from pydotcompute.pipeline import load_pipeline

    text = (
        '[stages.preprocess]\nbackend = "torch"\nmax_batch_rows = 512\n\n'
        '[stages.compute]\nbackend = "torch"\nfuse = false\nring_rows = 100\n'
    )
    path = tmp_path / "p.toml"  # type: ignore[operator]
    path.write_text(text)
    with pytest.raises(PipelineValidationError, match=r":8: .*'compute'.*ring_rows = 100"):
        load_pipeline(path).validate(create_plugin_manager())


@pytest.mark.parametrize(
    "compute",
    [
        {"ring_rows": "auto"},  # by reference: the bound grows with the traffic
        {"ring_rows": 10, "fuse": True},  # fused: no link at all
    ],
)
def test_no_refusal_where_no_ring_is_made(compute: dict[str, object]) -> None:
    pipeline = (
        Pipeline()
        .add_stage("preprocess", backend="torch", max_batch_rows=1000)
        .add_stage("compute", backend="torch", params={"stats": ["max"]}, **compute)
    )
    pipeline.validate(create_plugin_manager())


def test_a_numpy_pipeline_has_no_rings_to_size() -> None:
    (
        Pipeline()
        .add_stage("preprocess", max_batch_rows=1000)
        .add_stage("compute", fuse=False, ring_rows=10)
        .validate(create_plugin_manager())
    )


def feed(sizes: list[int], width: int = 8) -> tuple[list[RecordBatch], np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((sum(sizes), width)).astype(np.float32)
    out, start = [], 0
    for n in sizes:
        out.append(
            RecordBatch(
                values=torch.from_numpy(x[start : start + n]),
                record_ids=record_ids_for_rows(start, n, 5),
            )
        )
        start += n
    return out, x


@pytest.mark.parametrize("backpressure", ["block", "reject", "drop_oldest"])
async def test_by_reference_between_torch_stages_loses_nothing(backpressure: str) -> None:
    """Batches far bigger than RING_BYTES of rows go by reference under every strategy:
    none refused or evicted for its size, every row out once, and no ring made."""
    from pydotcompute.dataflow import RING_BYTES

    width = 8
    big = RING_BYTES // (width * 4) + 10
    batches, x = feed([5, big, 7], width)
    pipeline = (
        Pipeline()
        .add_stage("preprocess", backend="torch")
        .add_stage("compute", backend="torch", fuse=False, backpressure=backpressure)
    )
    plan = pipeline.validate(create_plugin_manager())
    async with PipelineRun(plan) as run:
        results = [r async for r in run.process(batches)]
        (link,) = run.ring_links()["preprocess"].values()
    assert link.by_reference and link.ring is None
    assert link.largest_batch == big and link.capacity == 2 * big
    assert link.rows_rejected == link.rows_dropped == link.rows_skipped == 0 and len(link) == 0
    ids = np.concatenate([row_indices(r.record_ids) for r in results])
    assert sorted(ids.tolist()) == list(range(len(x)))
    means = np.concatenate([r.values[:, 0] for r in results])
    lo, hi = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    np.testing.assert_allclose(means, ((x - lo) / (hi - lo)).mean(axis=1)[ids], rtol=1e-5)
