"""Restart policies on pipeline stages: a worker that crashes is restarted with its
queue intact, what it held goes to dead letters, and past the limit the run stops
naming the stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pipeline_helpers import Hold, make_plugins
from pydotcompute import Pipeline, Record, RestartPolicy, StageFailedError, records_from_array
from pydotcompute.errors import ParameterValueError, UnknownParameterError
from pydotcompute.plugins import PluginManager
from pydotcompute.stage import Emitter, StageDefinition, hookimpl


@pytest.fixture
def pm() -> PluginManager:
    return make_plugins()


def rows(n: int) -> np.ndarray:
    return np.arange(n * 3, dtype=np.float32).reshape(n, 3)


def three_stages(crashes: int, restart: object) -> Pipeline:
    return (
        Pipeline()
        .add_stage("a", "scale")
        .add_stage("b", "flaky", restart=restart, params={"crashes": crashes})  # type: ignore[arg-type]
        .add_stage("c", "scale")
    )


async def test_a_restarted_stage_loses_only_what_it_held_and_says_so(pm: PluginManager) -> None:
    inputs = list(records_from_array(rows(40), columnar=False))
    policy = RestartPolicy.on_failure(max_restarts=3, backoff=0.0)
    async with three_stages(2, policy).open(plugins=pm) as run:
        results = [r async for r in run.process(inputs)]
        telemetry = run.telemetry()
        dead = run.runtime.dead_letters()
    assert len(results) == 38
    assert telemetry["b"].restarts == 2
    assert telemetry["b"].messages_dead_lettered == 2
    assert [d.kernel_id for d in dead] == ["b", "b"]
    assert all(isinstance(d.error, RuntimeError) for d in dead)
    # Every record is accounted for exactly once: a result or a dead letter.
    delivered = [r.correlation_id for r in results]
    held = [d.message.correlation_id or d.message.message_id for d in dead]
    assert sorted(map(str, delivered + held)) == sorted(str(r.message_id) for r in inputs)
    assert all(type(r) is Record for r in results)


async def test_past_its_restart_limit_a_stage_stops_the_run(pm: PluginManager) -> None:
    pipeline = three_stages(5, {"max_restarts": 2, "backoff": 0.0})
    with pytest.raises(StageFailedError) as info:
        async for _ in pipeline.run(records_from_array(rows(40), columnar=False), plugins=pm):
            pass
    assert info.value.stage == "b"
    assert "flaky stage crashed" in str(info.value)


def test_restart_is_validated_and_located(pm: PluginManager, tmp_path: Path) -> None:
    toml = tmp_path / "p.toml"
    toml.write_text(
        "[stages.a]\n"
        'stage = "scale"\n'
        "[stages.b]\n"
        'stage = "flaky"\n'
        "restart = { max_restarts = 2, backoff = 0.0, restart_on_stall = true }\n"
    )
    plan = Pipeline.from_toml(toml).validate(plugins=pm)
    assert plan["b"].restart == RestartPolicy(max_restarts=2, backoff=0.0, restart_on_stall=True)
    assert plan["a"].restart == RestartPolicy.never()

    toml.write_text('[stages.b]\nstage = "flaky"\nrestart = { max_retries = 2 }\n')
    with pytest.raises(UnknownParameterError, match=r"p\.toml:3: stage 'b': .*'max_retries'"):
        Pipeline.from_toml(toml).validate(plugins=pm)
    toml.write_text('[stages.b]\nstage = "flaky"\nrestart = { max_restarts = -1 }\n')
    with pytest.raises(ParameterValueError, match=r"p\.toml:3: .*max_restarts must be"):
        Pipeline.from_toml(toml).validate(plugins=pm)
    with pytest.raises(ParameterValueError, match="restart must be 'never' or a table"):
        three_stages(0, "always").validate(plugins=pm)


class CrashAtTheEnd(Hold):
    """Holds everything; its first ``finish`` crashes the worker (after it has taken
    every end marker), the next one sends what it holds."""

    crashed = False

    async def finish(self, out: Emitter) -> None:
        if not self.crashed:
            self.crashed = True
            raise RuntimeError("crashed at the end of the stream")
        await super().finish(out)


class EndStages:
    @hookimpl
    def pydotcompute_register_stages(self) -> dict[str, StageDefinition]:
        return {
            "crash_at_end": StageDefinition(
                name="crash_at_end", factory=CrashAtTheEnd.factory, summary="crashes at the end"
            )
        }


async def test_a_worker_restarted_after_the_end_markers_still_ends(pm: PluginManager) -> None:
    """The markers a worker took before it crashed are gone from its queue: the stage
    keeps the account of them, so the restarted worker still sees its producers' ends."""
    pm.register_plugin(EndStages(), distribution="supervision-tests", entry_point="end")
    policy = RestartPolicy.on_failure(max_restarts=1, backoff=0.0)
    pipeline = (
        Pipeline()
        .add_stage("a", "scale", workers=2)
        .add_stage("b", "crash_at_end", restart=policy)
        .add_stage("c", "scale")
    )
    inputs = list(records_from_array(rows(10), columnar=False))
    async with pipeline.open(plugins=pm) as run:
        results = [r async for r in run.process(inputs)]
        telemetry = run.telemetry()
    assert telemetry["b"].restarts == 1
    assert telemetry["b"].messages_dead_lettered == 0  # it held no message when it crashed
    assert sorted(r.correlation_id for r in results) == sorted(r.message_id for r in inputs)
