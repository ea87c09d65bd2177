"""The built-in stages give the numpy backend's results on every other CPU backend:
the same pipeline, backend switched per stage by name. Between two stages that share a
backend the records stay in its arrays (through device rings where it makes them), and
the pipeline hands out numpy.

The ``triton`` cases run in the interpreter session (``nox -s tests-interpreter``). The
example plugin's ``clip`` stage (examples/plugin) runs on every backend too.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from pydotcompute import Pipeline, records_from_array
from pydotcompute.backend import NumpyBackend
from pydotcompute.plugins import PluginManager, create_plugin_manager
from pydotcompute.stage import Record, RecordBatch, StageError, row_indices

ROOT = Path(__file__).resolve().parents[1]

STATS = ["mean", "std", "var", "min", "max", "sum", "range"]


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(500, 12)).astype(np.float32)
    x[::9] = 2.0  # constant records
    x[4, 3] = np.nan
    x[10, :] = np.nan
    return x, np.arange(500) % 7 - 3


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Yield to the event loop until ``condition()`` holds; fail after ``timeout`` s."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


def require_backend(backend: str) -> None:
    pytest.importorskip("pydotcompute_triton")
    if backend == "triton":
        from pydotcompute_triton import triton_unavailable_reason

        reason = triton_unavailable_reason()
        if reason is not None:
            pytest.skip(reason)
    if backend not in create_plugin_manager().backends():
        pytest.skip(f"backend {backend!r} is not installed")


async def run(
    backend: str, x: np.ndarray, keys: np.ndarray, ring_rows: int = 262_144
) -> tuple[np.ndarray, RecordBatch]:
    plugins = create_plugin_manager()
    stats_pipeline = (
        Pipeline()
        .add_stage("preprocess", backend=backend)
        .add_stage("compute", backend=backend, ring_rows=ring_rows, params={"stats": STATS})
    )
    results = [
        r async for r in stats_pipeline.run(records_from_array(x, batch_size=64), plugins=plugins)
    ]
    rows = np.concatenate([row_indices(r.record_ids) for r in results])
    table = np.concatenate([r.values for r in results])[np.argsort(rows)]
    reduce_pipeline = (
        Pipeline()
        .add_stage("distributor", backend=backend, params={"mode": "key"})
        .add_stage(
            "aggregator",
            backend=backend,
            ring_rows=ring_rows,
            params={"size": 10_000, "reduce": "sum", "timeout": 3600.0},
        )
    )
    (sums,) = [
        r
        async for r in reduce_pipeline.run(
            records_from_array(np.nan_to_num(x), keys=keys), plugins=plugins
        )
    ]
    return table, sums


@pytest.mark.parametrize(
    ("backend", "ring_rows"),
    [
        ("torch", 262_144),
        pytest.param("triton", 262_144, marks=pytest.mark.interpreter),
        # Rings smaller than a batch: block sends each batch in pieces.
        pytest.param("triton", 40, marks=pytest.mark.interpreter),
    ],
)
async def test_a_cpu_backend_matches_numpy(backend: str, ring_rows: int) -> None:
    require_backend(backend)
    x, keys = data()
    expected_table, expected_sums = await run("numpy", x, keys)
    table, sums = await run(backend, x, keys, ring_rows)
    assert type(table) is np.ndarray and type(sums.values) is np.ndarray
    np.testing.assert_allclose(table, expected_table, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert sums.keys.tolist() == expected_sums.keys.tolist()
    assert sums.counts.tolist() == expected_sums.counts.tolist()
    np.testing.assert_allclose(sums.values, expected_sums.values, rtol=1e-5, atol=1e-5)


async def test_torch_records_stay_tensors_between_stages(monkeypatch: pytest.MonkeyPatch) -> None:
    """preprocess -> compute on one backend: nothing becomes numpy until the sink, which
    converts once per result batch."""
    require_backend("torch")
    import torch

    def refuse(self: torch.Tensor, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"a {tuple(self.shape)} tensor was turned into numpy implicitly")

    plugins = create_plugin_manager()
    backend = plugins.backend("torch")
    conversions: list[tuple[int, ...]] = []
    to_numpy = type(backend).to_numpy

    def counted(self: object, x: torch.Tensor) -> np.ndarray:
        conversions.append(tuple(x.shape))
        return to_numpy(self, x)

    monkeypatch.setattr(torch.Tensor, "__array__", refuse)
    monkeypatch.setattr(type(backend), "to_numpy", counted)
    x, _ = data()
    pipeline = (
        Pipeline()
        .add_stage("preprocess", backend="torch")
        .add_stage("compute", backend="torch", params={"stats": ["mean", "range"]})
    )
    results = [
        r async for r in pipeline.run(records_from_array(x, batch_size=100), plugins=plugins)
    ]
    monkeypatch.undo()
    assert [type(r.values) for r in results] == [np.ndarray] * 5
    assert sorted(conversions) == [(100, 2)] * 5  # the sink's results, nothing before
    expected = NumpyBackend().row_mean(NumpyBackend().minmax_normalize(x))
    rows = np.concatenate([row_indices(r.record_ids) for r in results])
    table = np.concatenate([r.values for r in results])[np.argsort(rows)]
    np.testing.assert_allclose(table[:, 0], expected, rtol=1e-5, equal_nan=True)


@pytest.mark.interpreter
async def test_triton_stages_pass_batches_through_device_rings() -> None:
    """Between two triton stages with ring_rows set, every row goes through the consumer's
    DeviceRing, and the host's mirror of each ring agrees with the ring's own counters; a
    ring smaller than a batch takes none (each goes whole, by reference)."""
    require_backend("triton")
    x, _ = data()
    for ring_rows, ringed in ((250, 500), (48, 0)):
        pipeline = (
            Pipeline()
            .add_stage("preprocess", backend="triton")
            .add_stage(  # apart, not fused: between them is a ring
                "compute",
                backend="triton",
                ring_rows=ring_rows,
                fuse=False,
                params={"stats": ["max"]},
            )
        )
        async with pipeline.open(plugins=create_plugin_manager()) as run:
            results = [r async for r in run.process(records_from_array(x, batch_size=100))]
            links = run.ring_links()
            telemetry = run.telemetry()
        (link,) = links["preprocess"].values()
        assert sum(len(r) for r in results) == 500
        assert telemetry["compute"].records_in == 500
        assert telemetry["compute"].ring_records_dropped == 0
        assert len(link) == 0 and link.rows_skipped == 0
        if ringed:
            stats = link.ring.statistics()
            assert (stats.pushed, stats.popped, stats.size, stats.dropped) == (500, 500, 0, 0)
        else:  # 100-row batches never split into a 48-row ring
            assert link.ring is None or link.ring.statistics().pushed == 0


async def test_batches_leave_for_another_backend_as_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch -> numpy: the torch stage hands numpy to the numpy stage (no tensor reaches
    numpy code), and the results match an all-numpy run."""
    require_backend("torch")
    import torch

    def refuse(self: torch.Tensor, *args: object, **kwargs: object) -> None:
        raise AssertionError("a tensor reached numpy code")

    monkeypatch.setattr(torch.Tensor, "__array__", refuse)
    x, _ = data()

    async def stats(first: str) -> np.ndarray:
        pipeline = (
            Pipeline()
            .add_stage("preprocess", backend=first)
            .add_stage("compute", backend="numpy", params={"stats": ["mean", "std"]})
        )
        results = [
            r
            async for r in pipeline.run(
                records_from_array(x, batch_size=128), plugins=create_plugin_manager()
            )
        ]
        assert not any(r.__class__.__name__ == "StageError" for r in results)
        rows = np.concatenate([row_indices(r.record_ids) for r in results])
        return np.concatenate([r.values for r in results])[np.argsort(rows)]

    np.testing.assert_allclose(
        await stats("torch"), await stats("numpy"), rtol=1e-5, atol=1e-6, equal_nan=True
    )


@pytest.mark.interpreter
async def test_rows_left_in_a_ring_come_back_in_the_shutdown_report() -> None:
    """A consumer that never takes its input (deactivated) leaves RingRows in its
    queue; closing the run turns them back into the records, as numpy."""
    require_backend("triton")
    x, _ = data()
    pipeline = (
        Pipeline()
        .add_stage("preprocess", backend="triton")
        .add_stage("compute", backend="triton", fuse=False, params={"stats": ["mean"]})
    )
    run = pipeline.open(plugins=create_plugin_manager())
    async with run:
        await run.runtime.deactivate("compute")
        for batch in records_from_array(x[:200], batch_size=100):
            await run.send(batch)
        # until preprocess has put both batches into the ring
        await until(lambda: run.telemetry()["preprocess"].records_out == 200)
    left = run.report.kernels["compute"].unprocessed
    batches = [m for m in left if isinstance(m, RecordBatch)]
    assert [type(b.values) for b in batches] == [np.ndarray, np.ndarray]
    rows = np.concatenate([row_indices(b.record_ids) for b in batches])
    assert rows.tolist() == list(range(200))
    expected = NumpyBackend().minmax_normalize(x[:200])
    np.testing.assert_allclose(np.concatenate([b.values for b in batches]), expected, rtol=1e-6)
    assert run.runtime.shutdown_report is run.report


@pytest.mark.interpreter
async def test_fan_in_from_several_workers_through_their_own_rings() -> None:
    """distributor -> 3 compute workers -> aggregator on triton: each compute worker has
    its own ring into the aggregator (one ring per pair keeps each sender's rows in
    order), and every record arrives once with the right statistic."""
    require_backend("triton")
    x, _ = data()
    keys = np.arange(len(x)) % 5
    pipeline = (
        Pipeline()
        .add_stage("distributor", backend="triton", params={"mode": "key"})
        .add_stage("compute", backend="triton", workers=3, ring_rows=64, params={"stats": ["sum"]})
        .add_stage("aggregator", backend="triton", ring_rows=40, params={"size": 50})
    )
    async with pipeline.open(plugins=create_plugin_manager()) as run:
        source = records_from_array(np.nan_to_num(x), keys=keys, batch_size=100)
        results = [r async for r in run.process(source)]
        links = run.ring_links()
    rows = np.concatenate([row_indices(r.record_ids) for r in results])
    assert sorted(rows.tolist()) == list(range(len(x)))
    sums = np.concatenate([r.values for r in results])[np.argsort(rows)]
    np.testing.assert_allclose(sums[:, 0], np.nan_to_num(x).sum(axis=1), rtol=1e-5, atol=1e-4)
    into_aggregator = [links[f"compute_{i}"]["aggregator"].ring for i in range(3)]
    assert sum(ring.statistics().pushed for ring in into_aggregator) == len(x)
    # The distributor only splits host input: its batches are numpy and go by reference.
    assert all(link.ring is None for link in links["distributor"].values())


@pytest.mark.interpreter
async def test_drop_oldest_rings_keep_the_newest_rows_and_count_the_rest() -> None:
    """300 rows into a 150-row drop_oldest ring while its consumer is paused: the
    newest 150 come out, and the stage's telemetry counts the 150 evicted."""
    require_backend("triton")
    x, _ = data()
    pipeline = (
        Pipeline()
        .add_stage("preprocess", backend="triton")
        .add_stage(
            "compute",
            backend="triton",
            backpressure="drop_oldest",
            ring_rows=150,
            params={"stats": ["min"]},
        )
    )
    async with pipeline.open(plugins=create_plugin_manager()) as run:
        await run.runtime.deactivate("compute")
        for batch in records_from_array(x[:300], batch_size=100):
            await run.send(batch)
        await run.end_input()
        await until(lambda: run.telemetry()["preprocess"].records_out == 300)
        await run.runtime.reactivate("compute")
        results = [r async for r in run.results()]
        telemetry = run.telemetry()["compute"]
    rows = np.concatenate([row_indices(r.record_ids) for r in results])
    assert rows.tolist() == list(range(150, 300))
    assert telemetry.ring_records_dropped == 150 and telemetry.records_in == 150
    assert telemetry.messages_dropped == 0


# -- the example plugin on every backend --------------------------------------------------


@pytest.fixture
def clip_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginManager]:
    """The installed plugins plus examples/plugin's ``clip``, imported from its source."""
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "plugin" / "src"))
    importlib.invalidate_caches()
    try:
        module = importlib.import_module("pydotcompute_example_clip")
        pm = create_plugin_manager()
        if "clip" not in pm.stages():  # not installed here: register it from source
            assert pm.register_plugin(
                module, distribution="pydotcompute-example-clip", entry_point="clip"
            )
        yield pm
    finally:
        sys.modules.pop("pydotcompute_example_clip", None)


async def run_clip(plugins: PluginManager, backend: str, inputs: list[object]) -> list[object]:
    pipeline = (
        Pipeline()
        .add_stage("clip", backend=backend, params={"low": -0.5, "high": 0.75})
        .add_stage("compute", backend=backend, params={"stats": ["min", "max", "sum"]})
    )
    return [r async for r in pipeline.run(inputs, plugins=plugins)]


@pytest.mark.parametrize(
    "backend", ["numpy", "torch", pytest.param("triton", marks=pytest.mark.interpreter)]
)
async def test_the_example_clip_stage_runs_on_every_backend(
    clip_plugins: PluginManager, backend: str
) -> None:
    """Batches and per-message records, NaN included, through clip then compute on one
    backend: the same results as numpy's clip computed here, and no StageError."""
    if backend != "numpy":
        require_backend(backend)
    x, _ = data()
    x = x * 2
    results = await run_clip(clip_plugins, backend, list(records_from_array(x, batch_size=64)))
    assert all(type(r) is RecordBatch for r in results)
    rows = np.concatenate([row_indices(r.record_ids) for r in results])
    table = np.concatenate([r.values for r in results])[np.argsort(rows)]
    clipped = np.clip(x, -0.5, 0.75)
    expected = np.stack([clipped.min(axis=1), clipped.max(axis=1), clipped.sum(axis=1)], axis=1)
    np.testing.assert_allclose(table, expected, rtol=1e-5, atol=1e-5, equal_nan=True)

    records = [Record(values=row, key=i) for i, row in enumerate(x[:20])]
    per_message = await run_clip(clip_plugins, backend, records)
    assert not [r for r in per_message if type(r) is StageError]
    by_key = {r.key: r.stats for r in per_message}
    np.testing.assert_allclose(
        [by_key[i]["max"] for i in range(20)], expected[:20, 1], rtol=1e-6, equal_nan=True
    )


async def test_the_example_clip_stage_names_bounds_the_wrong_way_round(
    clip_plugins: PluginManager,
) -> None:
    pipeline = Pipeline().add_stage("clip", params={"low": 1.0, "high": 0.0})
    x = np.zeros((3, 2), dtype=np.float32)
    (error,) = [r async for r in pipeline.run(records_from_array(x), plugins=clip_plugins)]
    assert type(error) is StageError and "clip low (1.0) is above high (0.0)" in error.error


class _RecordingContext:
    """A KernelContext stand-in that keeps what the Emitter sends."""

    def __init__(self) -> None:
        self.sent: list[object] = []
        self.counts: dict[str, int] = {}

    async def send(self, msg: object) -> None:
        self.sent.append(msg)

    async def send_many(self, msgs: list[object]) -> None:
        self.sent.extend(msgs)

    async def send_to(self, target: str, msg: object) -> None:
        self.sent.append(msg)


@pytest.mark.parametrize("bulk", [False, True], ids=["send", "send_many"])
async def test_leaving_for_the_host_copies_the_batch_and_leaves_the_original_alone(
    bulk: bool,
) -> None:
    """A batch may be in several stages' hands (a fan-out sends one object to each): a
    stage that forwards it to the host sends a host copy, and never rewrites the one it
    was given."""
    require_backend("torch")
    from pydotcompute.dataflow import StagePorts
    from pydotcompute.stage import Emitter, StageSetup
    from pydotcompute_triton import TorchBackend

    backend = TorchBackend()
    setup = StageSetup(
        stage="sink",
        kernel_id="sink",
        worker=0,
        workers=1,
        params={},
        backend=backend,
        batch_size=8,
        ports=StagePorts(downstream=(), routed=True, producers=("<feeder>",)),
    )
    ctx = _RecordingContext()
    out = Emitter(ctx, setup)  # type: ignore[arg-type]
    device = backend.asarray(np.arange(6, dtype=np.float32).reshape(3, 2))
    batch = RecordBatch(values=device, record_ids=np.zeros((3, 2), np.uint64))
    if bulk:
        await out.send_many([batch, Record(values=[1.0])])
    else:
        await out.send(batch)
    sent = ctx.sent[0]
    assert isinstance(sent, RecordBatch) and isinstance(sent.values, np.ndarray)
    assert sent.values.tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    assert batch.values is device  # the original still holds the tensor
    assert sent.record_ids is batch.record_ids
