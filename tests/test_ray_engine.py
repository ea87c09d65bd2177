"""engine = "ray": the same pipelines on a real Ray (started here, 2 CPUs), the same
results, the local engine's backpressure counts, actors killed mid-stream."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import ray
from pydotcompute import Pipeline, RecordBatch, StageFailedError, records_from_array
from pydotcompute.errors import ParameterValueError, PipelineValidationErrors
from pydotcompute.pipeline import RayPipelineRun, RayUnavailableError, open_run
from ray_helpers import make_plugins, worker_env
from test_pipeline_examples import EXAMPLES, WIRE_CASES, canonical, example_plugins


@pytest.fixture(scope="module")
def ray_cpus() -> Iterator[None]:
    """One Ray for the whole module (a start costs seconds), of its own: "local" never
    joins a cluster something else started on this machine."""
    ray.init(address="local", num_cpus=2, **worker_env())
    yield
    ray.shutdown()


def per_message(n: int, run_id: int = 9) -> list[Any]:
    x = np.arange(n * 4, dtype=np.float32).reshape(n, 4)
    return list(records_from_array(x, columnar=False, run_id=run_id))


def ids_of(results: list[Any]) -> list[Any]:
    out: list[Any] = []
    for r in results:
        if type(r) is RecordBatch:
            out.extend(map(tuple, r.record_ids.tolist()))
        else:
            out.append(r.correlation_id)
    return out


# -- choosing the engine (no Ray needed) ---------------------------------------------------


def test_the_engine_is_read_from_the_file_and_checked(tmp_path: Any) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[pipeline]\nengine = "ray"\naddress = "auto"\n[stages.preprocess]\n')
    plan = Pipeline.from_toml(path).validate()
    assert (plan.engine, plan.address) == ("ray", "auto")
    assert Pipeline().add_stage("preprocess").validate().engine == "local"
    path.write_text('[pipeline]\nengine = "spark"\n[stages.preprocess]\n')
    with pytest.raises(ParameterValueError, match=r"p\.toml:2: engine must be one of local, ray"):
        Pipeline.from_toml(path).validate()


def test_placement_settings_are_validated_and_located(tmp_path: Any) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        "[stages.preprocess]\n"
        "num_cpus = 0.5\n"
        "num_gpus = 1\n"
        "resources = { node_a = 1 }\n"
        "[stages.compute]\n"
        "num_cpus = -1\n"
        'resources = { node_b = "x" }\n'
    )
    with pytest.raises(PipelineValidationErrors) as info:
        Pipeline.from_toml(path).validate()
    text = str(info.value)
    assert "p.toml:6: stage 'compute': num_cpus must be a number >= 0 or 'auto', got -1" in text
    assert "p.toml:7: stage 'compute': resources.node_b must be a number >= 0" in text
    pipeline = Pipeline().add_stage("preprocess", num_cpus=0.5, resources={"node_a": 1})
    stage = pipeline.validate()["preprocess"]
    assert (stage.settings["num_cpus"], dict(stage.settings["resources"])) == (0.5, {"node_a": 1.0})
    with pytest.raises(ParameterValueError, match="num_cpus"):
        Pipeline().add_stage("preprocess", resources={"CPU": 2}).validate()


def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    pipeline = Pipeline(engine="ray").add_stage("preprocess")
    with pytest.raises(RayUnavailableError, match=r"pip install 'pydotcompute\[ray\]'"):
        pipeline.open()
    # The local engine never imports it.
    assert type(Pipeline().add_stage("preprocess").open()).__name__ == "PipelineRun"


def test_local_only_options_are_refused_on_ray() -> None:
    plan = Pipeline(engine="ray").add_stage("preprocess").validate()
    with pytest.raises(ValueError, match="local engine's"):
        open_run(plan, wire_check=True)
    with pytest.raises(ValueError, match="is for engine 'ray'"):
        open_run(plan, engine="local", address="auto")


# -- the same results --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(WIRE_CASES))
async def test_every_example_gives_on_ray_what_it_gives_locally(
    name: str, ray_cpus: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_inputs, ordered = WIRE_CASES[name]
    pm = example_plugins(monkeypatch)
    local = [r async for r in Pipeline.from_toml(EXAMPLES / name).run(make_inputs(), plugins=pm)]
    pipeline = Pipeline.from_toml(EXAMPLES / name)
    pipeline.engine = "ray"
    async with pipeline.open(plugins=pm) as run:
        assert isinstance(run, RayPipelineRun)
        on_ray = [r async for r in run.process(make_inputs())]
    assert on_ray, name
    if ordered:  # one worker per stage: the local engine's order is kept too
        assert canonical(on_ray) == canonical(local)
    else:
        assert sorted(canonical(on_ray), key=repr) == sorted(canonical(local), key=repr)
    assert run.report is not None and run.report.clean


async def test_the_guide_in_columns_and_its_telemetry(ray_cpus: None) -> None:
    x = np.random.default_rng(3).random((20_000, 64), dtype=np.float32)
    batches = list(records_from_array(x, batch_size=4096, run_id=3))
    pipeline = Pipeline.from_toml(EXAMPLES / "guide.toml")
    async with pipeline.open() as local_run:
        local = [r async for r in local_run.process(batches)]
    async with open_run(pipeline.validate(), engine="ray") as run:
        on_ray = [r async for r in run.process(batches)]
    assert canonical(on_ray) == canonical(local)
    telemetry = run.telemetry()
    assert list(telemetry) == ["preprocess", "compute"]
    for t in telemetry.values():
        assert (t.records_in, t.records_out, t.records_failed) == (20_000, 20_000, 0)
        assert t.fused_with == ("preprocess", "compute")  # one actor runs both
        assert t.state == "active"
    # The same message counts as the local engine's (4 batches and a ragged one, and
    # the end marker).
    for name, t in local_run.telemetry().items():
        on_ray_t = telemetry[name]
        assert (on_ray_t.messages_processed, on_ray_t.messages_sent) == (
            t.messages_processed,
            t.messages_sent,
        )
    assert run.records_fed == 20_000


@pytest.mark.parametrize(
    ("settings", "threads"),
    [({}, 1), ({"num_cpus": 2}, 2), ({"num_cpus": 1.5}, 1), ({"threads": 3}, 3)],
)
async def test_an_actor_cuts_row_wise_work_into_the_cpus_it_reserves(
    ray_cpus: None, settings: dict[str, Any], threads: int
) -> None:
    """threads = "auto" on Ray: the whole CPUs the actor reserves (one by Ray's default),
    not the node's cores, which its other actors share."""
    x = np.zeros((10, 2), dtype=np.float32)
    pipeline = Pipeline(engine="ray").add_stage("p", "threads_probe", **settings)
    results = [
        r async for r in pipeline.run(records_from_array(x, batch_size=10), plugins=make_plugins())
    ]
    assert np.concatenate([r.values for r in results]).ravel().tolist() == [threads] * 10


# -- backpressure across actors ------------------------------------------------------------


async def test_reject_refuses_and_counts_what_does_not_fit(ray_cpus: None) -> None:
    pipeline = (
        Pipeline(engine="ray")
        .add_stage("a", "scale", batch_size=16)
        .add_stage("b", "scale", backpressure="reject", queue_size=32, params={"delay": 0.02})
    )
    inputs = per_message(1000)
    async with pipeline.open(plugins=make_plugins()) as run:
        results = [r async for r in run.process(inputs)]
    t = run.telemetry()
    assert t["a"].records_rejected > 0  # b was slow: some of a's output was refused
    assert len(results) + t["a"].records_rejected == 1000
    assert t["b"].messages_rejected == t["a"].records_rejected  # one record per message
    assert t["b"].records_in == len(results)
    assert len(set(ids_of(results))) == len(results)
    assert run.report is not None and run.report.leftover_count == 0
    assert all(k.books_balance for k in run.worker_telemetry().values())


async def test_drop_oldest_evicts_and_counts(ray_cpus: None) -> None:
    pipeline = (
        Pipeline(engine="ray")
        .add_stage("a", "scale", batch_size=16)
        .add_stage("b", "scale", backpressure="drop_oldest", queue_size=32, params={"delay": 0.02})
    )
    async with pipeline.open(plugins=make_plugins()) as run:
        results = [r async for r in run.process(per_message(1000))]
    t = run.telemetry()
    assert t["b"].messages_dropped > 0
    assert len(results) + t["b"].messages_dropped == 1000
    assert t["a"].records_rejected == 0
    assert all(k.books_balance for k in run.worker_telemetry().values())


async def test_block_loses_nothing_behind_a_slow_stage(ray_cpus: None) -> None:
    pipeline = (
        Pipeline(engine="ray")
        .add_stage("a", "scale", batch_size=16)
        .add_stage("b", "scale", queue_size=32, params={"delay": 0.005})
    )
    inputs = per_message(600)
    async with pipeline.open(plugins=make_plugins()) as run:
        results = [r async for r in run.process(inputs)]
    assert ids_of(results) == [r.message_id for r in inputs]  # all, in order
    t = run.telemetry()
    assert (t["b"].messages_dropped, t["b"].messages_rejected) == (0, 0)


# -- failures -----------------------------------------------------------------------------


def three_stages(restart: Any, *, delay: float = 0.002) -> Pipeline:
    return (
        Pipeline(engine="ray")
        .add_stage("a", "scale", batch_size=8)
        .add_stage("b", "scale", restart=restart, batch_size=8, params={"delay": delay})
        .add_stage("c", "scale")
    )


async def test_a_killed_actor_is_replaced_and_its_calls_replayed(ray_cpus: None) -> None:
    inputs = per_message(1500)
    policy = {"max_restarts": 2, "backoff": 0.0}
    results: list[Any] = []
    async with three_stages(policy).open(plugins=make_plugins()) as run:
        assert isinstance(run, RayPipelineRun)
        async for r in run.process(inputs):
            results.append(r)
            if len(results) == 200:  # mid-stream: b holds calls in flight
                ray.kill(run.actors()["b"])
    t = run.telemetry()
    # Nothing lost, nothing doubled, order kept; every value computed once by each stage.
    assert ids_of(results) == [r.message_id for r in inputs]
    expected = np.stack([r.values for r in inputs]) * 8
    np.testing.assert_array_equal(np.stack([r.values for r in results]), expected)
    assert t["b"].restarts == 1
    assert (t["b"].records_in, t["b"].records_out) == (1500, 1500)
    assert all(k.books_balance for k in run.worker_telemetry().values())
    assert (t["b"].messages_dead_lettered, t["b"].input_queue_depth) == (0, 0)
    assert run.report is not None and run.report.leftover_count == 0


async def test_without_restarts_a_killed_actor_fails_the_run_naming_the_stage(
    ray_cpus: None,
) -> None:
    inputs = per_message(1500)
    results: list[Any] = []
    run = three_stages("never").open(plugins=make_plugins())
    assert isinstance(run, RayPipelineRun)

    async def kill_b_mid_stream() -> None:
        async with run:
            async for r in run.process(inputs):
                results.append(r)
                if len(results) == 200:
                    ray.kill(run.actors()["b"])

    unretrieved: list[str] = []
    asyncio.get_running_loop().set_exception_handler(
        lambda loop, context: unretrieved.append(context["message"])
    )
    with pytest.raises(StageFailedError) as info:
        await kill_b_mid_stream()
    assert (info.value.stage, info.value.kernel_id) == ("b", "b")
    assert isinstance(info.value.error, ray.exceptions.RayActorError)
    gc.collect()  # a task whose exception nobody read says so when collected
    assert unretrieved == []  # the failure is told once, by the error above
    # Every record fed is a result, or left behind in the report (none lost unseen).
    report = run.report
    assert report is not None
    left = [m for k in report.kernels.values() for m in (*k.unprocessed, *k.unread)]
    assert sorted(map(str, ids_of(results) + [root(m) for m in left])) == sorted(
        str(r.message_id) for r in inputs[: run.records_fed]
    )
    assert len(report.kernels["b"].unprocessed) > 0


async def test_a_stage_no_node_can_host_fails_the_run_naming_it_instead_of_waiting(
    ray_cpus: None,
) -> None:
    plan = (
        Pipeline(engine="ray")
        .add_stage("b", "scale", resources={"gpu_island": 1})  # no node has one
        .validate(make_plugins())
    )
    run = RayPipelineRun(plan, place_timeout_s=3.0)
    with pytest.raises(StageFailedError) as info:
        async with run:
            pass
    assert info.value.stage == "b"
    assert "no node of the cluster took its actor within 3 s" in str(info.value)
    assert "gpu_island" in str(info.value)


async def test_a_lost_actor_that_may_hold_records_fails_the_run_instead_of_restarting(
    ray_cpus: None,
) -> None:
    pipeline = (
        Pipeline(engine="ray")
        .add_stage("a", "scale", batch_size=8)
        .add_stage("b", "holding_scale", restart={"max_restarts": 2, "backoff": 0.0}, batch_size=8)
        .add_stage("c", "scale")
    )
    results: list[Any] = []
    run = pipeline.open(plugins=make_plugins())
    assert isinstance(run, RayPipelineRun)

    async def kill_b_mid_stream() -> None:
        async with run:
            async for r in run.process(per_message(1500)):
                results.append(r)
                if len(results) == 200:
                    ray.kill(run.actors()["b"])

    with pytest.raises(StageFailedError) as info:
        await kill_b_mid_stream()
    assert info.value.stage == "b"
    assert "holding state that a new actor cannot have" in str(info.value)
    assert run.telemetry()["b"].restarts == 0  # not restarted with what it lost


def root(msg: Any) -> Any:
    return msg.correlation_id or msg.message_id


async def test_a_crash_in_stage_code_is_restarted_inside_the_actor(ray_cpus: None) -> None:
    """As on the local engine: the kernel restarts, what it held is dead-lettered."""
    inputs = per_message(40)
    pipeline = (
        Pipeline(engine="ray")
        .add_stage("a", "scale")
        .add_stage("b", "flaky", restart={"max_restarts": 3, "backoff": 0.0}, params={"crashes": 2})
        .add_stage("c", "scale")
    )
    async with pipeline.open(plugins=make_plugins()) as run:
        assert isinstance(run, RayPipelineRun)
        results = [r async for r in run.process(inputs)]
    t = run.telemetry()
    dead = run.dead_letters()
    assert len(results) == 38
    assert (t["b"].restarts, t["b"].messages_dead_lettered) == (2, 2)
    assert [d.kernel_id for d in dead] == ["b", "b"]
    held = [root(d.message) for d in dead]
    assert sorted(map(str, ids_of(results) + held)) == sorted(str(r.message_id) for r in inputs)


async def test_past_its_restart_limit_a_crashing_stage_stops_the_run(ray_cpus: None) -> None:
    pipeline = (
        Pipeline(engine="ray")
        .add_stage("a", "scale")
        .add_stage("b", "flaky", restart={"max_restarts": 1, "backoff": 0.0}, params={"crashes": 5})
    )
    with pytest.raises(StageFailedError, match="the flaky stage crashed") as info:
        async for _ in pipeline.run(per_message(40), plugins=make_plugins()):
            pass
    assert info.value.stage == "b"


async def test_a_run_joins_the_ray_it_finds_and_leaves_it_running(ray_cpus: None) -> None:
    pipeline = Pipeline(engine="ray").add_stage("a", "scale")
    results = [r async for r in pipeline.run(per_message(10), plugins=make_plugins())]
    assert len(results) == 10
    assert ray.is_initialized()
    await asyncio.sleep(0)
