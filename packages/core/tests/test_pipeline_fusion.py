"""Stage fusion and offload (issue 12): a chain of one-to-one stages runs in one worker,
with the results, ids and per-stage telemetry it has when the stages run apart; a stage's
array work runs in a worker thread where its ``offload`` setting says so."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any, ClassVar

import numpy as np
import pytest
from pipeline_helpers import SCALE, Scale, TestStages, rows_by_id
from pydotcompute import Pipeline, Record, RecordBatch, StageError, records_from_array
from pydotcompute.plugins import PluginManager, create_plugin_manager
from pydotcompute.stage import (
    BatchStage,
    Emitter,
    MapStage,
    RecordGroup,
    StageDefinition,
    hookimpl,
    root_id,
    row_index,
    sort_batch,
)

MAP_SCALE = dataclasses.replace(SCALE, name="map_scale", map_stage=Scale)


class MapStages:
    @hookimpl
    def pydotcompute_register_stages(self) -> dict[str, Any]:
        return {"map_scale": MAP_SCALE}


@pytest.fixture
def pm() -> PluginManager:
    plugins = create_plugin_manager(autoload=False)
    plugins.register_plugin(TestStages(), distribution="core-tests", entry_point="test")
    plugins.register_plugin(MapStages(), distribution="core-tests-map", entry_point="map")
    return plugins


def chain(fusion: bool = True, **b_settings: Any) -> Pipeline:
    return (
        Pipeline(defaults={"fuse": fusion})
        .add_stage("a", "map_scale")
        .add_stage("b", "map_scale", params={"factor": 3.0}, **b_settings)
        .add_stage("c", "map_scale", params={"factor": 5.0})
    )


def test_a_stage_may_hold_records_unless_a_map_stage_or_declared_to_hold_none() -> None:
    assert SCALE.may_hold_records and not MAP_SCALE.may_hold_records
    assert not dataclasses.replace(SCALE, holds_records=False).may_hold_records
    assert dataclasses.replace(MAP_SCALE, holds_records=True).may_hold_records


def test_a_one_to_one_chain_is_one_group(pm: PluginManager) -> None:
    assert chain().validate(pm).groups == (("a", "b", "c"),)


@pytest.mark.parametrize(
    ("settings", "groups"),
    [
        ({"fuse": False}, (("a",), ("b",), ("c",))),  # b opts out: no one joins it
        ({"workers": 2}, (("a",), ("b",), ("c",))),  # b's worker count is its own
        ({"backpressure": "reject"}, (("a",), ("b", "c"))),  # b's queue sheds load
        ({"restart": {"max_restarts": 1}}, (("a",), ("b",), ("c",))),
    ],
)
def test_what_keeps_stages_apart(
    pm: PluginManager, settings: dict[str, Any], groups: tuple[tuple[str, ...], ...]
) -> None:
    assert chain(True, **settings).validate(pm).groups == groups


def test_fan_out_fan_in_and_stages_that_are_not_maps_are_not_fused(pm: PluginManager) -> None:
    fan = (
        Pipeline()
        .add_stage("a", "map_scale")
        .add_stage("b", "map_scale", inputs=["a"])
        .add_stage("c", "map_scale", inputs=["a"])
        .add_stage("d", "map_scale", inputs=["b", "c"])
    )
    assert fan.validate(pm).groups == (("a",), ("b",), ("c",), ("d",))
    mixed = Pipeline().add_stage("a", "map_scale").add_stage("b", "scale")
    assert mixed.validate(pm).groups == (("a",), ("b",))


def test_fuse_false_in_the_pipeline_defaults_turns_fusion_off(pm: PluginManager) -> None:
    plan = Pipeline.from_toml_text(
        '[pipeline]\nfuse = false\n[stages.a]\nstage = "map_scale"\n'
        '[stages.b]\nstage = "map_scale"\n'
    ).validate(pm)
    assert plan.groups == (("a",), ("b",))


@pytest.mark.parametrize("columnar", [True, False])
async def test_fused_results_and_telemetry_match_the_stages_run_apart(
    pm: PluginManager, columnar: bool
) -> None:
    x = np.arange(200, dtype=np.float64).reshape(50, 4)
    outcomes = []
    for fuse in (True, False):
        pipeline = chain(fuse)
        inputs = list(records_from_array(x, batch_size=8, columnar=columnar, run_id=1))
        async with pipeline.open(plugins=pm) as run:
            results = [r async for r in run.process(inputs)]
            kernels = run.runtime.kernel_ids
        telemetry = {name: t.to_dict() for name, t in run.telemetry().items()}
        outcomes.append((rows_by_id(results), telemetry, kernels))
    (fused_rows, fused_t, fused_kernels), (apart_rows, apart_t, apart_kernels) = outcomes
    assert fused_kernels == ["a"] and apart_kernels == ["a", "b", "c"]
    assert fused_rows.keys() == apart_rows.keys() and len(fused_rows) == 50
    for key, row in apart_rows.items():
        np.testing.assert_array_equal(fused_rows[key], row)
    for name in "abc":
        for count in ("records_in", "records_out", "records_failed"):
            assert fused_t[name][count] == apart_t[name][count] == (0 if "fail" in count else 50)
        assert fused_t[name]["fused_with"] == ("a", "b", "c")
        assert apart_t[name]["fused_with"] == ()


async def test_a_failure_in_a_fused_member_names_that_member(pm: PluginManager) -> None:
    pipeline = (
        Pipeline()
        .add_stage("a", "map_scale", params={"factor": 1.0})
        .add_stage("b", "map_scale", params={"poison": 7.0})
        .add_stage("c", "map_scale")
    )
    x = np.arange(8, dtype=np.float64).reshape(4, 2)  # row 3 holds 7
    inputs = list(records_from_array(x, columnar=False, run_id=2))
    async with pipeline.open(plugins=pm) as run:
        assert run.plan.groups == (("a", "b", "c"),)
        results = [r async for r in run.process(inputs)]
    errors = [r for r in results if type(r) is StageError]
    assert errors and all(e.stage == "b" for e in errors)
    telemetry = run.telemetry()
    failed = sum(len(e) for e in errors)
    assert telemetry["b"].records_failed == failed
    assert telemetry["a"].records_failed == telemetry["c"].records_failed == 0
    assert telemetry["c"].records_in == 4 - failed
    assert telemetry["a"].records_out == 4


# -- row chains: map stages that keep identity pass rows, not messages ----------------------


class RowScale(MapStage):
    """Multiplies rows by ``factor`` (raises on ``poison``); notes each records_out call."""

    keeps_identity = True
    built: ClassVar[list[str]] = []  # the kernel of each records_out call

    def compute(self, values: Any) -> Any:
        poison = self.params["poison"]
        if poison is not None and (np.asarray(values) == poison).any():
            raise ValueError(f"poison value {poison} found")
        return np.asarray(values) * self.params["factor"]

    def records_out(self, group: RecordGroup, result: Any) -> list[Any]:
        RowScale.built.append(self.setup.stage)
        return [
            Record(values=row, key=getattr(r, "key", None), correlation_id=root_id(r))
            for r, row in zip(group.records, result, strict=True)
        ]

    def batch_out(self, batch: RecordBatch, result: Any) -> RecordBatch:
        return dataclasses.replace(batch, values=result)


class RowScaleAnyId(RowScale):
    keeps_identity = False


class RowStages:
    @hookimpl
    def pydotcompute_register_stages(self) -> dict[str, Any]:
        return {
            name: dataclasses.replace(SCALE, name=name, factory=cls.factory, map_stage=cls)
            for name, cls in (("row_scale", RowScale), ("row_scale_any_id", RowScaleAnyId))
        }


def row_chain(fuse: bool, middle: str = "row_scale", **b_params: Any) -> Pipeline:
    return (
        Pipeline(defaults={"fuse": fuse})
        .add_stage("a", "row_scale", params={"factor": 2.0})
        .add_stage("b", middle, params={"factor": 3.0, **b_params})
        .add_stage("c", "row_scale", params={"factor": 5.0})
    )


async def _run_rows(pipeline: Pipeline, x: np.ndarray[Any, Any]) -> tuple[list[Any], Any]:
    plugins = create_plugin_manager(autoload=False)
    plugins.register_plugin(RowStages(), distribution="core-tests-rows", entry_point="rows")
    RowScale.built.clear()
    inputs = list(records_from_array(x, batch_size=8, columnar=False, run_id=3))
    async with pipeline.open(plugins=plugins) as run:
        results = [r async for r in run.process(inputs)]
    return results, run.telemetry()


async def test_a_row_chain_builds_messages_only_at_its_end_with_the_same_results() -> None:
    x = np.arange(200, dtype=np.float64).reshape(50, 4)
    fused, fused_t = await _run_rows(row_chain(True), x)
    assert set(RowScale.built) == {"c"}  # a and b handed rows on, not messages
    apart, apart_t = await _run_rows(row_chain(False), x)
    assert set(RowScale.built) == {"a", "b", "c"}
    fused_rows, apart_rows = rows_by_id(fused), rows_by_id(apart)
    assert fused_rows.keys() == apart_rows.keys() and len(fused_rows) == 50
    for key, row in apart_rows.items():
        np.testing.assert_array_equal(fused_rows[key], row)
        np.testing.assert_array_equal(row, x[row_index(key)] * 30.0)
    for name in "abc":
        for count in ("records_in", "records_out", "records_failed"):
            assert fused_t[name].to_dict()[count] == apart_t[name].to_dict()[count]


async def test_a_failing_row_chain_member_names_itself_and_the_records_it_received() -> None:
    x = np.arange(8, dtype=np.float64).reshape(4, 2)  # a doubles 3.5 -> 7: b's poison
    x[1, 1] = 3.5
    results, telemetry = await _run_rows(row_chain(True, poison=7.0), x)
    errors = [r for r in results if type(r) is StageError]
    assert errors and all(e.stage == "b" and "poison value 7.0" in e.error for e in errors)
    # The ids of the records b received: a's outputs carry the input rows' root ids.
    failed = {row_index(e.correlation_id) for e in errors}
    assert failed <= set(range(4)) and 1 in failed
    ok = [r for r in results if type(r) is not StageError]
    assert len(ok) + len(failed) == 4
    assert telemetry["a"].records_out == 4 and telemetry["a"].records_failed == 0
    assert telemetry["b"].records_failed == len(failed)
    assert telemetry["c"].records_in == 4 - len(failed)


async def test_a_row_chain_runs_a_batch_in_one_call_and_a_failing_one_member_by_member() -> None:
    plugins = create_plugin_manager(autoload=False)
    plugins.register_plugin(RowStages(), distribution="core-tests-rows", entry_point="rows")
    x = np.arange(40, dtype=np.float64).reshape(10, 4)
    poisoned = x.copy()
    poisoned[4, 0] = 3.5  # a doubles it to 7: b's poison
    feed = [*records_from_array(x, batch_size=10), *records_from_array(poisoned, batch_size=10)]
    async with row_chain(True, poison=7.0).open(plugins=plugins) as run:
        results = [r async for r in run.process(feed)]
    good, failed = results if type(results[1]) is StageError else results[::-1]
    np.testing.assert_array_equal(good.values, x * 30.0)  # a, b and c, in one call
    assert type(failed) is StageError and failed.stage == "b" and len(failed) == 10
    assert "poison value 7.0" in failed.error
    telemetry = run.telemetry()
    assert (telemetry["a"].records_in, telemetry["a"].records_out) == (20, 20)
    assert (telemetry["b"].records_in, telemetry["b"].records_failed) == (20, 10)
    assert (telemetry["c"].records_in, telemetry["c"].records_out) == (10, 10)


async def test_a_member_that_does_not_keep_identity_gets_its_messages_built() -> None:
    x = np.arange(40, dtype=np.float64).reshape(10, 4)
    results, _ = await _run_rows(row_chain(True, middle="row_scale_any_id"), x)
    assert set(RowScale.built) == {"a", "b", "c"}
    assert sorted(row_index(root_id(r)) for r in results) == list(range(10))


# -- offload: where a stage's array work runs ----------------------------------------------


class WhereStage(BatchStage):
    """Doubles values through ``offload``, noting the thread the work ran on."""

    threads: ClassVar[list[int]] = []

    async def process(self, batch: list[Any], out: Emitter) -> None:
        for columnar in sort_batch(batch).batches:
            doubled = await self.offload(self._work, columnar.values)
            await out.send(dataclasses.replace(columnar, values=doubled))

    def _work(self, values: Any) -> Any:
        WhereStage.threads.append(threading.get_ident())
        return values * 2


class WhereStages:
    @hookimpl
    def pydotcompute_register_stages(self) -> dict[str, Any]:
        return {"where": StageDefinition("where", WhereStage.factory, "notes its thread")}


@pytest.mark.parametrize(
    ("offload", "rows", "on_the_loop"),
    [
        ("none", 1000, True),
        ("thread", 2, False),
        ("auto", 2, True),  # 2 x 64 values: not worth a thread
        ("auto", 1000, False),  # 64,000 values: worth one
    ],
)
async def test_offload_runs_the_array_work_where_the_setting_says(
    offload: str, rows: int, on_the_loop: bool
) -> None:
    plugins = create_plugin_manager(autoload=False)
    plugins.register_plugin(WhereStages(), distribution="where", entry_point="where")
    WhereStage.threads.clear()
    x = np.arange(rows * 64, dtype=np.float64).reshape(rows, 64)
    pipeline = Pipeline().add_stage("w", "where", offload=offload)
    results = [
        r async for r in pipeline.run(records_from_array(x, batch_size=500), plugins=plugins)
    ]
    assert np.array_equal(np.concatenate([r.values for r in results]), x * 2)
    assert WhereStage.threads
    loop_thread = threading.get_ident()
    assert all((t == loop_thread) is on_the_loop for t in WhereStage.threads)


# -- feeding: a blocking source is not fed far ahead of what it took in --------------------


class Probe(BatchStage):
    """Notes, at each batch, how many records the run has fed beyond what it took in."""

    run: ClassVar[Any] = None
    ahead: ClassVar[list[int]] = []

    async def process(self, batch: list[Any], out: Emitter) -> None:
        taken = self.taken = getattr(self, "taken", 0) + sum(len(b) for b in batch)
        Probe.ahead.append(Probe.run.records_fed - taken)
        await asyncio.sleep(0.002)  # slower than the feeder
        for columnar in sort_batch(batch).batches:
            await out.send(columnar)


class ProbeStages:
    @hookimpl
    def pydotcompute_register_stages(self) -> dict[str, Any]:
        return {"probe": StageDefinition("probe", Probe.factory, "notes how far ahead")}


async def test_feed_keeps_a_blocking_source_a_bounded_number_of_bytes_ahead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 8 batches of 1,000 x 1 float64
    monkeypatch.setattr("pydotcompute.pipeline._run._AHEAD_BYTES", 8 * 8_000)
    plugins = create_plugin_manager(autoload=False)
    plugins.register_plugin(ProbeStages(), distribution="probe", entry_point="probe")
    Probe.ahead.clear()
    x = np.arange(100_000, dtype=np.float64).reshape(-1, 1)
    pipeline = Pipeline().add_stage("p", "probe", batch_size=1)
    async with pipeline.open(plugins=plugins) as run:
        Probe.run = run
        out = [r async for r in run.process(records_from_array(x, batch_size=1_000))]
    assert sum(len(r) for r in out) == 100_000
    # At most the bound plus one feed group (>= 16,384 records) ahead; unbounded, the
    # feeder would have put all 100 batches in the queue at once.
    assert max(Probe.ahead) <= 8_000 + 16_384 + 1_000  # a group ends past 16,384
