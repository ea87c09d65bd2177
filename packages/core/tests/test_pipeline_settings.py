"""Stage settings come from one table: each setting's good and bad values through the Python
API and TOML, pipeline defaults, and a new setting added as one entry of the table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from pipeline_helpers import make_plugins
from pydotcompute import BackpressureStrategy, Pipeline, RestartPolicy
from pydotcompute.errors import (
    DanglingInputError,
    ParameterValueError,
    PipelineValidationErrors,
    UnknownParameterError,
    UnknownStageError,
)
from pydotcompute.pipeline import (
    STAGE_SETTINGS,
    STRUCTURE_KEYS,
    PipelinePlan,
    StageSetting,
    plan_pipeline,
    settings_table,
)
from pydotcompute.plugins import PluginManager


@pytest.fixture
def pm() -> PluginManager:
    return make_plugins()


def toml_stage(settings: str, source: str = "flow.toml") -> Pipeline:
    return Pipeline.from_toml_text(f"[stages.a]\nstage = 'scale'\n{settings}\n", source=source)


# -- the table ---------------------------------------------------------------------------


def test_the_table_declares_every_setting_once() -> None:
    assert list(STAGE_SETTINGS) == [
        "workers",
        "queue_size",
        "backpressure",
        "batch_size",
        "backend",
        "restart",
        "ring_rows",
        "max_batch_rows",
        "fuse",
        "offload",
        "threads",
        "num_cpus",
        "num_gpus",
        "resources",
    ]
    for name, setting in STAGE_SETTINGS.items():
        assert setting.name == name and name not in STRUCTURE_KEYS
        assert setting.doc and "\n" not in setting.doc and setting.accepts


def test_the_table_cannot_be_changed_in_place() -> None:
    with pytest.raises(TypeError):
        STAGE_SETTINGS["extra"] = STAGE_SETTINGS["workers"]  # type: ignore[index]


def test_an_unset_stage_takes_every_default(pm: PluginManager) -> None:
    stage = Pipeline().add_stage("a", "scale").validate(pm)["a"]
    shown = {name: s.show(stage.settings[name]) for name, s in STAGE_SETTINGS.items()}
    assert shown == {name: s.default for name, s in STAGE_SETTINGS.items()}
    assert (stage.workers, stage.queue_size, stage.batch_size) == (1, 1024, 1024)
    assert stage.backpressure is BackpressureStrategy.BLOCK and stage.backend_name == "numpy"
    assert stage.restart == RestartPolicy.never() and stage.ring_rows is None


# -- each setting: a good value and a bad one, in Python and in TOML ----------------------

# (setting, value as passed to add_stage, the same as TOML, what the plan holds)
GOOD = [
    ("workers", 3, "3", 3),
    ("queue_size", 16, "16", 16),
    ("backpressure", "drop_oldest", "'DROP_OLDEST'", BackpressureStrategy.DROP_OLDEST),
    ("batch_size", 7, "7", 7),
    ("backend", "numpy", "'numpy'", "numpy"),
    (
        "restart",
        {"max_restarts": 2, "backoff": 0.5},
        "{ max_restarts = 2, backoff = 0.5 }",
        RestartPolicy(max_restarts=2, backoff=0.5),
    ),
    ("ring_rows", 4096, "4096", 4096),
    ("max_batch_rows", 65536, "65536", 65536),
    ("fuse", False, "false", False),
    ("offload", "thread", "'thread'", "thread"),
    ("threads", 3, "3", 3),
    ("num_cpus", 0.5, "0.5", 0.5),
    ("num_gpus", 1, "1", 1.0),
    ("resources", {"node_a": 2}, "{ node_a = 2 }", {"node_a": 2.0}),
]

# (setting, bad value for add_stage, the same as TOML, the message)
BAD = [
    ("workers", 0, "0", "workers must be a positive integer, got 0"),
    ("workers", True, "true", "workers must be a positive integer, got True"),
    ("queue_size", "big", "'big'", "queue_size must be a positive integer, got 'big'"),
    ("backpressure", "wait", "'wait'", "backpressure: unknown backpressure strategy 'wait'; "),
    ("batch_size", 2.5, "2.5", "batch_size must be a positive integer, got 2.5"),
    ("backend", "", "''", "backend must be a backend's name, got ''"),
    ("restart", "always", "'always'", "restart must be 'never' or a table of max_restarts"),
    ("restart", {"max_restarts": -1}, "{ max_restarts = -1 }", "restart: max_restarts must be"),
    ("ring_rows", -3, "-3", "ring_rows must be a positive integer or 'auto', got -3"),
    ("max_batch_rows", 0, "0", "max_batch_rows must be a positive integer or 'auto', got 0"),
    ("fuse", "no", "'no'", "fuse must be true or false, got 'no'"),
    ("fuse", 0, "0", "fuse must be true or false, got 0"),
    ("offload", "process", "'process'", "offload must be one of auto, thread, none, got 'process'"),
    ("threads", 0, "0", "threads must be a positive integer or 'auto', got 0"),
    ("num_cpus", -1, "-1", "num_cpus must be a number >= 0 or 'auto', got -1"),
    ("num_gpus", True, "true", "num_gpus must be a number >= 0, got True"),
    ("resources", [1], "[1]", "resources must be a table of resource names to amounts"),
    ("resources", {"GPU": 1}, "{ GPU = 1 }", "resources: 'GPU' is set with num_gpus, not here"),
]


def test_every_setting_has_good_and_bad_value_cases() -> None:
    """A new setting needs its own cases here: the table and these lists must agree."""
    assert {case[0] for case in GOOD} == set(STAGE_SETTINGS)
    assert {case[0] for case in BAD} == set(STAGE_SETTINGS)


@pytest.mark.parametrize(("name", "value", "toml", "held"), GOOD)
def test_a_good_value_in_python_and_in_toml(
    pm: PluginManager, name: str, value: Any, toml: str, held: Any
) -> None:
    from_python = Pipeline().add_stage("a", "scale", **{name: value}).validate(pm)["a"]
    from_toml = toml_stage(f"{name} = {toml}").validate(pm)["a"]
    assert from_python.settings[name] == held and from_toml.settings[name] == held
    setting = STAGE_SETTINGS[name]
    assert setting.check(setting.show(held)) == held  # what reports show reads back the same


@pytest.mark.parametrize(("name", "value", "toml", "message"), BAD)
def test_a_bad_value_in_python(
    pm: PluginManager, name: str, value: Any, toml: str, message: str
) -> None:
    pipeline = Pipeline().add_stage("a", "scale").add_stage("b", "scale", **{name: value})
    with pytest.raises(ParameterValueError) as info:
        pipeline.validate(pm)
    assert (info.value.stage, info.value.key, info.value.line) == ("b", name, None)
    assert str(info.value).startswith(f"stage 'b': {message}")


@pytest.mark.parametrize(("name", "value", "toml", "message"), BAD)
def test_a_bad_value_in_toml_names_the_file_and_line(
    pm: PluginManager, name: str, value: Any, toml: str, message: str
) -> None:
    with pytest.raises(ParameterValueError) as info:
        toml_stage(f"\n{name} = {toml}").validate(pm)
    assert (info.value.stage, info.value.key, info.value.line) == ("a", name, 4)
    assert str(info.value).startswith(f"flow.toml:4: stage 'a': {message}")


@pytest.mark.parametrize(("name", "value", "toml", "message"), BAD)
def test_a_bad_pipeline_default_is_located_at_its_line(
    pm: PluginManager, name: str, value: Any, toml: str, message: str
) -> None:
    text = f"[pipeline]\nname = 'p'\n{name} = {toml}\n\n[stages.a]\nstage = 'scale'\n"
    with pytest.raises(ParameterValueError) as info:
        Pipeline.from_toml_text(text, source="flow.toml").validate(pm)
    assert str(info.value).startswith(f"flow.toml:3: stage 'a': {message}")
    with pytest.raises(ParameterValueError) as info:
        Pipeline(defaults={name: value}).add_stage("a", "scale").validate(pm)
    assert str(info.value).startswith(f"stage 'a': {message}")


def test_a_stage_value_overrides_a_bad_default(pm: PluginManager) -> None:
    plan = Pipeline(defaults={"workers": 0}).add_stage("a", "scale", workers=2).validate(pm)
    assert plan["a"].workers == 2


def test_none_takes_the_default(pm: PluginManager) -> None:
    pipeline = Pipeline(defaults={"queue_size": 8, "workers": None})
    plan = pipeline.add_stage("a", "scale", queue_size=None, batch_size=None).validate(pm)
    assert (plan["a"].queue_size, plan["a"].workers, plan["a"].batch_size) == (8, 1, 1024)


def test_an_unknown_setting_in_python_points_to_params(pm: PluginManager) -> None:
    with pytest.raises(UnknownParameterError) as info:
        Pipeline().add_stage("a", "scale", factor=3).validate(pm)
    assert (info.value.stage, info.value.key) == ("a", "factor")
    assert "unknown setting 'factor' (settings: stage, inputs, workers," in str(info.value)
    assert "resources, params; the stage's own parameters go in its params" in str(info.value)


def test_an_unknown_setting_is_reported_with_the_graph_problems(pm: PluginManager) -> None:
    pipeline = Pipeline().add_stage("a", "scale", inputs=["ghost"]).add_stage("b", worker=2)
    with pytest.raises(PipelineValidationErrors) as info:
        pipeline.validate(pm)
    assert [type(e) for e in info.value.errors] == [
        UnknownParameterError,
        DanglingInputError,
        UnknownStageError,
    ]
    assert str(info.value.errors[0]).startswith("stage 'b': unknown setting 'worker'")


# -- a new setting is one entry ------------------------------------------------------------


def _colour(name: str, value: Any) -> str:
    if value not in ("red", "blue"):
        raise ParameterValueError(f"{name} must be red or blue, got {value!r}", key=name)
    return str(value)


COLOUR = StageSetting[str]("colour", "red", _colour, "red or blue", "the stage's colour")
WITH_COLOUR = settings_table(*STAGE_SETTINGS.values(), COLOUR)


def plan_with_colour(pipeline: Pipeline, pm: PluginManager) -> PipelinePlan:
    return plan_pipeline(
        pipeline.name,
        pipeline.stages,
        pipeline.defaults,
        pm,
        source=pipeline.source,
        settings=WITH_COLOUR,
    )


def test_a_new_setting_is_accepted_by_python_toml_and_defaults(pm: PluginManager) -> None:
    python = Pipeline().add_stage("a", "scale", colour="blue").add_stage("b", "scale")
    plan = plan_with_colour(python, pm)
    assert plan["a"].settings["colour"] == "blue" and plan["b"].setting(COLOUR) == "red"
    assert plan["a"].workers == 1  # the other settings are untouched
    text = "[pipeline]\ncolour = 'blue'\n[stages.a]\nstage = 'scale'\n[stages.b]\nstage = 'scale'\n"
    toml = Pipeline.from_toml_text(text + "colour = 'red'\n")
    plan = plan_with_colour(toml, pm)
    assert (plan["a"].setting(COLOUR), plan["b"].setting(COLOUR)) == ("blue", "red")


def test_a_new_setting_refuses_a_bad_value_with_its_own_message(pm: PluginManager) -> None:
    python = Pipeline().add_stage("a", "scale", colour="green")
    with pytest.raises(ParameterValueError, match=r"^stage 'a': colour must be red or blue"):
        plan_with_colour(python, pm)
    toml = Pipeline.from_toml_text(
        "[stages.a]\nstage = 'scale'\ncolour = 'green'\n", source="flow.toml"
    )
    with pytest.raises(ParameterValueError) as info:
        plan_with_colour(toml, pm)
    assert str(info.value) == "flow.toml:3: stage 'a': colour must be red or blue, got 'green'"


def test_a_setting_outside_the_table_is_unknown(pm: PluginManager) -> None:
    with pytest.raises(UnknownParameterError, match="unknown setting 'colour'"):
        Pipeline().add_stage("a", "scale", colour="blue").validate(pm)
    with pytest.raises(UnknownParameterError, match="unknown pipeline default 'colour'"):
        Pipeline(defaults={"colour": "blue"}).add_stage("a", "scale").validate(pm)


def test_a_bad_entry_fails_when_declared() -> None:
    with pytest.raises(ParameterValueError, match="colour must be red or blue, got 'green'"):
        StageSetting[str]("colour", "green", _colour, "red or blue", "the stage's colour")
    with pytest.raises(ValueError, match="identifier"):
        StageSetting[str]("two words", "red", _colour, "red or blue", "x")
    with pytest.raises(ValueError, match="'workers' is declared twice or is reserved"):
        settings_table(*STAGE_SETTINGS.values(), STAGE_SETTINGS["workers"])
    with pytest.raises(ValueError, match="'params' is declared twice or is reserved"):
        settings_table(StageSetting[str]("params", "red", _colour, "red or blue", "x"))


def test_the_settings_a_plan_holds_are_read_only(pm: PluginManager) -> None:
    stage = Pipeline().add_stage("a", "scale").validate(pm)["a"]
    assert isinstance(stage.settings, Mapping)
    with pytest.raises(TypeError):
        stage.settings["workers"] = 5  # type: ignore[index]
