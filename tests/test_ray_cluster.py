"""engine = "ray" on a two-node cluster on this machine (``ray.cluster_utils.Cluster``):
stages pinned to nodes by custom resources; a run joins it by address."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import ray
from cli_helpers import GUIDE, pydotcompute
from pydotcompute import Pipeline, Record, StageFailedError, records_from_array
from pydotcompute.pipeline import RayPipelineRun
from ray.cluster_utils import Cluster
from ray_helpers import make_plugins, worker_env
from test_pipeline_examples import canonical


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A head node with resource ``node_a`` and a second node with ``node_b``."""
    nodes = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"node_a": 4}}
    )
    try:
        nodes.add_node(num_cpus=1, resources={"node_b": 4})
        nodes.wait_for_nodes()
        ray.init(address=nodes.address, **worker_env())
        yield nodes
    finally:
        ray.shutdown()
        nodes.shutdown()


@contextlib.contextmanager
def two_mobile_nodes(cluster: Cluster) -> Iterator[Callable[[Any, str], None]]:
    """Two more nodes with the resource ``mobile``, removed afterwards; yields
    ``lose(run, stage)``, which takes away, abruptly, the node ``stage``'s actor is on."""
    added = [cluster.add_node(num_cpus=1, resources={"mobile": 1}) for _ in range(2)]
    cluster.wait_for_nodes()

    def lose(run: Any, stage: str) -> None:
        on = ray.get(run.actors()[stage].node_id.remote())
        cluster.remove_node(next(n for n in added if n.node_id == on), allow_graceful=False)

    try:
        yield lose
    finally:
        for node in added:
            if node in cluster.list_all_nodes():
                cluster.remove_node(node)


async def run_losing_a_node(
    pipeline: Pipeline,
    inputs: list[Any],
    lose: Callable[[Any, str], None],
    stage: str,
    after: int,
) -> tuple[RayPipelineRun, list[Any]]:
    """Run ``pipeline`` over ``inputs``; once ``after`` results are in, lose ``stage``'s
    node. Returns the run (closed) and every result."""
    results: list[Any] = []
    async with pipeline.open(plugins=make_plugins()) as run:
        assert isinstance(run, RayPipelineRun)
        async for r in run.process(inputs):
            results.append(r)
            if len(results) == after:
                lose(run, stage)
    return run, results


def once_each(results: list[Any], inputs: list[Any]) -> bool:
    """Whether ``results`` answer every input exactly once."""
    answered = sorted(str(r.correlation_id) for r in results)
    return answered == sorted(str(m.message_id) for m in inputs)


def node_with(resource: str) -> str:
    return next(n["NodeID"] for n in ray.nodes() if n["Alive"] and resource in n["Resources"])


async def test_stages_run_on_the_nodes_their_resources_pin_them_to(cluster: Cluster) -> None:
    x = np.random.default_rng(5).random((10_000, 64), dtype=np.float32)
    batches = list(records_from_array(x, batch_size=1000, run_id=6))

    def guide() -> Pipeline:
        return (
            Pipeline("guide")
            .add_stage("preprocess", resources={"node_a": 1})
            .add_stage("compute", resources={"node_b": 1}, params={"stats": ["mean"]})
        )

    local = [r async for r in guide().run(batches)]
    pipeline = guide()
    pipeline.engine = "ray"
    async with pipeline.open() as run:
        assert isinstance(run, RayPipelineRun)
        on = {kid: ray.get(actor.node_id.remote()) for kid, actor in run.actors().items()}
        on_ray = [r async for r in run.process(batches)]
    # Placement splits the chain the local engine fuses: one actor per node.
    assert on == {"preprocess": node_with("node_a"), "compute": node_with("node_b")}
    assert canonical(on_ray) == canonical(local)
    telemetry: Any = run.telemetry()
    assert telemetry["compute"].records_in == 10_000 and telemetry["compute"].fused_with == ()


def test_the_command_joins_a_cluster_by_address_and_leaves_it_up(cluster: Cluster) -> None:
    done = pydotcompute(
        "run",
        GUIDE,
        "--synthetic",
        "5000",
        "--engine",
        "ray",
        "--address",
        cluster.address,
        "--json",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["engine"], report["results"]) == ("ray", 5000)
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2  # the run did not stop it


async def test_a_node_lost_mid_stream_moves_its_stage_to_another_node_and_loses_nothing(
    cluster: Cluster,
) -> None:
    """``compute`` may run on either of two nodes that have ``mobile``; the one it runs
    on goes away mid-stream: its actor is replaced on the other, its calls replayed."""
    x = np.random.default_rng(8).random((3000, 16), dtype=np.float32)
    inputs = list(records_from_array(x, columnar=False, run_id=8))
    pipeline = (
        Pipeline("moves", engine="ray", defaults={"fuse": False})
        .add_stage("preprocess", resources={"node_a": 1})
        .add_stage(
            "compute",
            resources={"mobile": 1},
            restart={"max_restarts": 1, "backoff": 0.0},
            params={"stats": ["mean"]},
        )
    )
    with two_mobile_nodes(cluster) as lose:
        run, results = await run_losing_a_node(pipeline, inputs, lose, "compute", after=500)
    assert once_each(results, inputs)
    compute = run.telemetry()["compute"]
    assert compute.restarts == 1
    # Calls replayed on the new actor count once: the books balance.
    assert (compute.records_in, compute.records_out, compute.records_failed) == (3000, 3000, 0)


async def test_a_sinks_results_lost_with_its_node_are_computed_again_once(
    cluster: Cluster,
) -> None:
    """The sink's calls answered on the lost node left their results in its object store
    (rows of 16 KiB, ten to a call: too big to travel inline), unread while the driver's
    reader lags: they are lost with the node, and the calls run again on a new actor."""
    x = np.random.default_rng(9).random((2000, 4096), dtype=np.float32)
    inputs = list(records_from_array(x, columnar=False, run_id=9))
    pipeline = Pipeline("wide", engine="ray").add_stage(
        "preprocess",
        resources={"mobile": 1},
        batch_size=10,
        restart={"max_restarts": 1, "backoff": 0.0},
    )
    with two_mobile_nodes(cluster) as lose:
        run, results = await run_losing_a_node(pipeline, inputs, lose, "preprocess", after=500)
    assert once_each(results, inputs)  # none lost, none twice
    preprocess = run.telemetry()["preprocess"]
    assert preprocess.restarts == 1
    assert (preprocess.records_in, preprocess.records_out) == (2000, 2000)
    assert all(k.books_balance for k in run.worker_telemetry().values())


def two_scales(holding: bool) -> Pipeline:
    """``a`` (a scale, or one that may hold records) on a ``mobile`` node, then a slow
    ``b`` on the head node, ten records to a call."""
    return (
        Pipeline("between", engine="ray")
        .add_stage(
            "a",
            "holding_scale" if holding else "scale",
            resources={"mobile": 1},
            batch_size=10,
            restart={"max_restarts": 1, "backoff": 0.0},
        )
        .add_stage("b", "scale", resources={"node_a": 1}, batch_size=10, params={"delay": 0.01})
    )


async def test_outputs_lost_between_stages_with_their_node_are_made_again_once(
    cluster: Cluster,
) -> None:
    """``a``'s node goes away while its outputs wait for ``b`` (rows of 16 KiB: they stay
    in the lost node's object store): each lost output is made again by calling ``a``'s
    new actor with the same inputs; nothing lost, nothing doubled, books balance."""
    x = np.random.default_rng(10).random((2000, 4096), dtype=np.float32)
    inputs = list(records_from_array(x, columnar=False, run_id=10))
    with two_mobile_nodes(cluster) as lose:
        run, results = await run_losing_a_node(two_scales(False), inputs, lose, "a", after=200)
    assert once_each(results, inputs)
    rows = {str(r.message_id): r.values for r in inputs}
    for r in results:
        assert type(r) is Record, r
        assert np.array_equal(r.values, rows[str(r.correlation_id)] * 4.0)  # scaled twice
    telemetry = run.telemetry()
    assert telemetry["a"].restarts == 1
    for stage in ("a", "b"):
        t = telemetry[stage]
        assert (t.records_in, t.records_out, t.records_failed) == (2000, 2000, 0)
    assert all(k.books_balance for k in run.worker_telemetry().values())


async def test_outputs_lost_with_a_stage_that_may_hold_records_fail_the_run_naming_it(
    cluster: Cluster,
) -> None:
    """As above, but ``a`` does not say it keeps no records between batches: what it
    kept, and so what it made, cannot be made again; the run fails naming ``a``."""
    x = np.random.default_rng(11).random((2000, 4096), dtype=np.float32)
    inputs = list(records_from_array(x, columnar=False, run_id=11))
    with two_mobile_nodes(cluster) as lose, pytest.raises(StageFailedError) as failed:
        await run_losing_a_node(two_scales(True), inputs, lose, "a", after=200)
    assert failed.value.stage == "a"
    assert "keep records between batches" in str(failed.value)
