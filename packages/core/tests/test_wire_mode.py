"""Wire-check mode (``PipelineRun(..., wire_check=True)``): every message between the host
and the workers, and between workers, goes through its wire form before delivery, so a
live object in a message fails the run instead of passing by reference."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from pipeline_helpers import make_plugins
from pydotcompute import (
    MessageValidationError,
    Pipeline,
    PipelineRun,
    Record,
    StageFailedError,
    message,
    records_from_array,
)
from pydotcompute.plugins import PluginManager
from pydotcompute.stage import BatchStage, Emitter, StageDefinition, hookimpl, root_id


@message(name="tests.Leaky")
@dataclasses.dataclass
class Leaky:
    """A message that carries a live object: fine in one process, no wire form."""

    handle: Any = None


class Leak(BatchStage):
    async def process(self, batch: list[Any], out: Emitter) -> None:
        for msg in batch:
            await out.send(Leaky(handle=object(), correlation_id=root_id(msg)))


class LeakStages:
    @hookimpl
    def pydotcompute_register_stages(self) -> dict[str, StageDefinition]:
        return {"leak": StageDefinition(name="leak", factory=Leak.factory, summary="leaks")}


@pytest.fixture
def pm() -> PluginManager:
    plugins = make_plugins()
    plugins.register_plugin(LeakStages(), distribution="wire-tests", entry_point="leak")
    assert {"hold", "leak"} <= set(plugins.stages())
    return plugins


async def run(pipeline: Pipeline, inputs: list[Any], pm: PluginManager, wire: bool) -> list[Any]:
    async with PipelineRun(pipeline.validate(pm), wire_check=wire) as r:
        return [m async for m in r.process(inputs)]


async def test_in_wire_mode_no_message_reaches_a_worker_by_reference(pm: PluginManager) -> None:
    pipeline = Pipeline().add_stage("a", "hold").add_stage("b", "hold")
    inputs = list(records_from_array(np.arange(12.0).reshape(6, 2), columnar=False))
    by_reference = await run(pipeline, inputs, pm, wire=False)
    assert [a is b for a, b in zip(by_reference, inputs, strict=True)] == [True] * 6
    through_the_wire = await run(pipeline, inputs, pm, wire=True)
    assert not any(m is i for m in through_the_wire for i in inputs)
    assert [m.message_id for m in through_the_wire] == [i.message_id for i in inputs]
    for got, sent in zip(through_the_wire, inputs, strict=True):
        assert type(got) is Record and got.values.dtype == sent.values.dtype
        np.testing.assert_array_equal(got.values, sent.values)


async def test_in_wire_mode_a_stage_sending_a_live_object_fails_naming_the_field(
    pm: PluginManager,
) -> None:
    pipeline = Pipeline().add_stage("leak", "leak").add_stage("b", "hold")
    inputs = [Record(values=[1.0])]
    assert len(await run(pipeline, inputs, pm, wire=False)) == 1
    with pytest.raises(StageFailedError) as info:
        await run(pipeline, inputs, pm, wire=True)
    assert info.value.stage == "leak"
    assert isinstance(info.value.__cause__, MessageValidationError)
    assert "Leaky.handle cannot be sent on the wire" in str(info.value.__cause__)


async def test_in_wire_mode_the_host_refuses_input_without_a_wire_form(pm: PluginManager) -> None:
    pipeline = Pipeline().add_stage("a", "hold")
    async with PipelineRun(pipeline.validate(pm), wire_check=True) as r:
        with pytest.raises(MessageValidationError, match=r"Record\.values cannot be sent"):
            await r.send(Record(values=[object()]))
        with pytest.raises(MessageValidationError, match=r"Leaky\.handle cannot be sent"):
            await r.send_many([Leaky(handle=object())])
        await r.end_input()
        assert [m async for m in r.results()] == []


async def test_pipeline_run_and_open_take_the_wire_check_too(pm: PluginManager) -> None:
    pipeline = Pipeline().add_stage("leak", "leak").add_stage("b", "hold")
    inputs = [Record(values=[1.0])]
    assert len([m async for m in pipeline.run(inputs, plugins=pm)]) == 1
    with pytest.raises(StageFailedError, match="leak"):
        async for _ in pipeline.run(inputs, plugins=pm, wire_check=True):
            pass
    async with pipeline.open(plugins=pm, wire_check=True) as opened:
        assert opened.wire_check
