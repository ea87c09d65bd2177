"""Issue 13, part 5: once a run is over its stages read as what happened to them:
finished (the stream ended through every stage), failed, or stopped (closed before
finishing); never "active" or "terminated"."""

from __future__ import annotations

import numpy as np
import pytest
from pipeline_helpers import make_plugins
from pydotcompute import Pipeline, StageFailedError, records_from_array
from pydotcompute.plugins import PluginManager


@pytest.fixture
def pm() -> PluginManager:
    return make_plugins()


def inputs(n: int = 20) -> list[object]:
    values = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    return list(records_from_array(values, columnar=False))


def two_stages() -> Pipeline:
    return Pipeline("p").add_stage("a", "scale").add_stage("b", "scale", workers=2)


async def test_a_completed_run_reads_finished_before_and_after_close(pm: PluginManager) -> None:
    async with two_stages().open(plugins=pm) as run:
        assert {t.state for t in run.telemetry().values()} == {"active"}
        results = [r async for r in run.process(inputs())]
        assert len(results) == 20
        # The workers are still there, idle: the stages are done all the same.
        assert {name: t.state for name, t in run.telemetry().items()} == {
            "a": "finished",
            "b": "finished",
        }
        assert run.outcome == "finished"
    assert {t.state for t in run.telemetry().values()} == {"finished"}


async def test_a_run_closed_before_its_end_reads_stopped(pm: PluginManager) -> None:
    async with two_stages().open(plugins=pm) as run:
        await run.send_many(inputs())  # never ended: the run is closed mid-stream
    assert run.outcome == "stopped"
    assert {name: t.state for name, t in run.telemetry().items()} == {
        "a": "stopped",
        "b": "stopped",
    }


async def test_a_failed_stage_reads_failed_and_the_others_stopped(pm: PluginManager) -> None:
    pipeline = Pipeline("p").add_stage("a", "scale").add_stage("b", "crash").add_stage("c", "scale")
    run = pipeline.open(plugins=pm)

    async def consume() -> None:
        async with run:
            async for _ in run.process(inputs()):
                pass

    with pytest.raises(StageFailedError):
        await consume()
    assert run.outcome == "failed"
    assert {name: t.state for name, t in run.telemetry().items()} == {
        "a": "stopped",
        "b": "failed",
        "c": "stopped",
    }
