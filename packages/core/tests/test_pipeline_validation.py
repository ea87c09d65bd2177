"""Every pipeline validation error, through the Python API: class, stage, message."""

from __future__ import annotations

from typing import Any

import pytest
from pipeline_helpers import make_plugins
from pydotcompute import BackpressureStrategy, Pipeline
from pydotcompute.errors import (
    DanglingInputError,
    ParameterValueError,
    PipelineCycleError,
    PipelineResourceWarning,
    PipelineValidationError,
    PipelineValidationErrors,
    UnknownBackendError,
    UnknownParameterError,
    UnknownStageError,
)
from pydotcompute.pipeline import resource_warnings, workers_limit
from pydotcompute.plugins import PluginManager
from pydotcompute.stage import hookimpl


@pytest.fixture
def pm() -> PluginManager:
    return make_plugins()


def test_a_valid_pipeline_plans_in_topological_order(pm: PluginManager) -> None:
    plan = (
        Pipeline("p")
        .add_stage("d", "scale", inputs=["b", "c"])
        .add_stage("b", "scale", inputs=["a"], workers=2)
        .add_stage("c", "scale", inputs=["a"])
        .add_stage("a", "scale", inputs=[])
        .validate(pm)
    )
    assert [s.name for s in plan.stages] == ["a", "b", "c", "d"]
    assert [s.name for s in plan.sources] == ["a"] and [s.name for s in plan.sinks] == ["d"]
    assert plan["a"].outputs == ("b", "c") and plan["d"].inputs == ("b", "c")
    assert plan["b"].kernel_ids == ("b_0", "b_1") and plan["a"].kernel_ids == ("a",)
    assert plan["a"].params == {"factor": 2.0, "poison": None}


def test_inputs_default_to_the_stage_before(pm: PluginManager) -> None:
    plan = (
        Pipeline()
        .add_stage("x", "scale")
        .add_stage("y", "scale")
        .add_stage("z", "scale")
        .validate(pm)
    )
    assert [(s.name, s.inputs) for s in plan.stages] == [("x", ()), ("y", ("x",)), ("z", ("y",))]


def test_settings_take_pipeline_defaults_then_stage_values(pm: PluginManager) -> None:
    pipeline = Pipeline(defaults={"batch_size": 64, "workers": 2, "backpressure": "drop_oldest"})
    pipeline.add_stage("a", "scale").add_stage("b", "scale", workers=1, queue_size=8)
    plan = pipeline.validate(pm)
    assert (plan["a"].batch_size, plan["a"].workers, plan["a"].queue_size) == (64, 2, 1024)
    assert plan["a"].backpressure is BackpressureStrategy.DROP_OLDEST
    assert (plan["b"].workers, plan["b"].queue_size) == (1, 8)
    assert plan["b"].backend_name == "numpy"


def test_no_stages(pm: PluginManager) -> None:
    with pytest.raises(PipelineValidationError, match="the pipeline has no stages"):
        Pipeline().validate(pm)


def test_a_stage_name_used_twice(pm: PluginManager) -> None:
    with pytest.raises(
        PipelineValidationError, match="stage 'a': the stage name is used twice"
    ) as info:
        Pipeline().add_stage("a", "scale").add_stage("a", "scale").validate(pm)
    assert info.value.stage == "a"


def test_unknown_stage_names_the_stage_and_lists_the_installed(pm: PluginManager) -> None:
    with pytest.raises(UnknownStageError) as info:
        Pipeline().add_stage("first", "scale").add_stage("second", "scael").validate(pm)
    err = info.value
    assert err.stage == "second"
    assert str(err).startswith("stage 'second': no installed plugin provides a stage named 'scael'")
    assert "scale (from core-tests)" in str(err)


def test_unknown_backend(pm: PluginManager) -> None:
    with pytest.raises(UnknownBackendError, match=r"stage 'a': .*backend named 'cuda'.*numpy"):
        Pipeline().add_stage("a", "scale", backend="cuda").validate(pm)


def test_a_backend_that_cannot_run_here(pm: PluginManager) -> None:
    def broken() -> Any:
        raise RuntimeError("no GPU")

    class GpuPlugin:
        @hookimpl
        def pydotcompute_register_backends(self) -> dict[str, Any]:
            return {"gpu": broken}

    pm.register_plugin(GpuPlugin(), distribution="gpu-dist", entry_point="g")
    with pytest.raises(
        PipelineValidationError, match=r"stage 'a': backend 'gpu' from 'gpu-dist' cannot be created"
    ):
        Pipeline().add_stage("a", "scale", backend="gpu").validate(pm)


def test_a_backend_that_is_no_compute_backend_names_the_stage_and_line(
    pm: PluginManager, tmp_path: Any
) -> None:
    class Half:  # has no row operations at all
        name = "half"

    class HalfPlugin:
        @hookimpl
        def pydotcompute_register_backends(self) -> dict[str, Any]:
            return {"half": Half}

    pm.register_plugin(HalfPlugin(), distribution="half-dist", entry_point="h")
    path = tmp_path / "p.toml"
    path.write_text('[stages.a]\nstage = "scale"\nbackend = "half"\n')
    with pytest.raises(PipelineValidationError) as info:
        Pipeline.from_toml(path).validate(pm)
    assert info.value.stage == "a" and info.value.line == 3
    assert "row_mean" in str(info.value)  # names a missing method


def test_unknown_parameter_lists_the_known_ones(pm: PluginManager) -> None:
    with pytest.raises(UnknownParameterError) as info:
        Pipeline().add_stage("a", "scale", params={"factr": 2}).validate(pm)
    assert info.value.stage == "a" and info.value.key == "params.factr"
    assert "unknown parameter 'factr' for a 'scale' stage (its parameters: factor, poison)" in str(
        info.value
    )


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({}, r"parameter 'factor' is required \(a number\): required multiplier"),
        ({"factor": "two"}, r"parameter 'factor': expected a number \(got 'two'\)"),
        ({"factor": True}, r"parameter 'factor': expected a number"),
        ({"factor": 1, "mode": "c"}, r"parameter 'mode': 'c' is not among \{'a', 'b'\}"),
        ({"factor": 1, "count": 0}, r"parameter 'count': 0 is below the minimum 1"),
        ({"factor": 1, "count": 11}, r"parameter 'count': 11 is above the maximum 10"),
        ({"factor": 1, "count": 2.5}, r"parameter 'count': expected an int"),
        ({"factor": 1, "names": "x"}, r"parameter 'names': expected a list of str"),
        ({"factor": 1, "names": ["x", 3]}, r"parameter 'names': expected a list of str"),
        (
            {"factor": 1, "poison": None, "mode": None},
            r"parameter 'mode': expected a string, got None",
        ),
    ],
)
def test_bad_parameter_values(pm: PluginManager, params: dict[str, Any], match: str) -> None:
    with pytest.raises(ParameterValueError, match=match) as info:
        Pipeline().add_stage("n", "needs", params=params).validate(pm)
    assert info.value.stage == "n"


def test_good_parameter_values_are_normalized(pm: PluginManager) -> None:
    plan = (
        Pipeline().add_stage("n", "needs", params={"factor": 3, "names": ["p", "q"]}).validate(pm)
    )
    assert plan["n"].params == {
        "factor": 3.0,
        "poison": None,
        "mode": "a",
        "count": 1,
        "names": ("p", "q"),
    }
    assert isinstance(plan["n"].params["factor"], float)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"workers": 0}, "workers must be a positive integer, got 0"),
        ({"workers": 1.5}, "workers must be a positive integer, got 1.5"),
        ({"queue_size": "big"}, "queue_size must be a positive integer, got 'big'"),
        ({"batch_size": -1}, "batch_size must be a positive integer, got -1"),
        ({"ring_rows": 0}, "ring_rows must be a positive integer or 'auto', got 0"),
        ({"ring_rows": "big"}, "ring_rows must be a positive integer or 'auto', got 'big'"),
        ({"workers": True}, "workers must be a positive integer, got True"),
        ({"backpressure": "sometimes"}, "backpressure: unknown backpressure strategy 'sometimes'"),
        ({"backend": 3}, "backend must be a backend's name, got 3"),
    ],
)
def test_bad_settings(pm: PluginManager, settings: dict[str, Any], match: str) -> None:
    with pytest.raises(ParameterValueError, match=match) as info:
        Pipeline().add_stage("a", "scale").add_stage("b", "scale", **settings).validate(pm)
    assert info.value.stage == "b"


def test_an_unknown_pipeline_default(pm: PluginManager) -> None:
    with pytest.raises(UnknownParameterError, match="unknown pipeline default 'worker'"):
        Pipeline(defaults={"worker": 2}).add_stage("a", "scale").validate(pm)


def test_a_dangling_input(pm: PluginManager) -> None:
    with pytest.raises(DanglingInputError) as info:
        Pipeline().add_stage("a", "scale").add_stage("b", "scale", inputs=["a", "ghost"]).validate(
            pm
        )
    assert info.value.stage == "b"
    assert "input 'ghost' is not a stage of this pipeline (stages: a)" in str(info.value)


def test_an_input_listed_twice(pm: PluginManager) -> None:
    with pytest.raises(ParameterValueError, match="input 'a' is listed more than once"):
        Pipeline().add_stage("a", "scale").add_stage("b", "scale", inputs=["a", "a"]).validate(pm)


def test_a_cycle_is_spelled_out(pm: PluginManager) -> None:
    pipeline = (
        Pipeline()
        .add_stage("src", "scale", inputs=[])
        .add_stage("a", "scale", inputs=["src", "c"])
        .add_stage("b", "scale", inputs=["a"])
        .add_stage("c", "scale", inputs=["b"])
    )
    with pytest.raises(PipelineCycleError) as info:
        pipeline.validate(pm)
    assert info.value.stage == "a"
    assert "its inputs form a cycle: a -> b -> c -> a" in str(info.value)


def test_a_stage_that_is_its_own_input(pm: PluginManager) -> None:
    with pytest.raises(PipelineCycleError, match="cycle: a -> a"):
        Pipeline().add_stage("a", "scale", inputs=["a"]).validate(pm)


def test_a_pipeline_that_is_all_cycle(pm: PluginManager) -> None:
    pipeline = (
        Pipeline().add_stage("a", "scale", inputs=["b"]).add_stage("b", "scale", inputs=["a"])
    )
    with pytest.raises(PipelineCycleError, match="cycle: a -> b -> a"):
        pipeline.validate(pm)


def test_worker_ids_colliding_with_a_stage_name(pm: PluginManager) -> None:
    pipeline = Pipeline().add_stage("w", "scale", workers=2).add_stage("w_1", "scale")
    with pytest.raises(
        PipelineValidationError, match="worker kernel id 'w_1' collides with stage 'w'"
    ):
        pipeline.validate(pm)


def test_inputs_must_be_names(pm: PluginManager) -> None:
    with pytest.raises(ParameterValueError, match="inputs must be a list of stage names"):
        Pipeline().add_stage("a", "scale", inputs=[1]).validate(pm)  # type: ignore[list-item]


def test_validation_errors_are_value_errors_and_ring_kernel_errors(pm: PluginManager) -> None:
    from pydotcompute import RingKernelError

    with pytest.raises(ValueError, match="no stages"):
        Pipeline().validate(pm)
    with pytest.raises(RingKernelError):
        Pipeline().validate(pm)


# -- every problem at once (issue 14, 11 and 13) -----------------------------------------

MISTAKES = """\
[pipeline]
workers = 0

[stages.a]
stage = "scale"
queue_size = 0

[stages.b]
stage = "nope"
inputs = ["ghost"]

[stages.c]
stage = "scale"
colour = "red"

[stages.c.params]
factr = 2.0
"""


def test_every_problem_is_reported_at_once_sorted_by_line(pm: PluginManager) -> None:
    with pytest.raises(PipelineValidationErrors) as info:
        Pipeline.from_toml_text(MISTAKES, source="flow.toml").validate(pm)
    found = [(type(e), e.stage, e.key, e.line) for e in info.value.errors]
    assert found == [
        (ParameterValueError, "a", "workers", 2),  # the bad default: once, at its line
        (ParameterValueError, "a", "queue_size", 6),
        (UnknownStageError, "b", None, 9),
        (DanglingInputError, "b", "inputs", 10),
        (UnknownParameterError, "c", "colour", 14),
        (UnknownParameterError, "c", "params.factr", 17),
    ]
    lines = str(info.value).splitlines()
    assert lines[0] == "flow.toml: 6 problems:"
    assert lines[1:] == [str(e) for e in info.value.errors]
    assert all(e.source == "flow.toml" for e in info.value.errors)


def test_one_problem_is_raised_as_itself(pm: PluginManager) -> None:
    with pytest.raises(UnknownParameterError) as info:
        Pipeline().add_stage("a", "scale", colour="red").validate(pm)
    assert not isinstance(info.value, PipelineValidationErrors)


def test_a_reader_problem_is_reported_with_the_stages(pm: PluginManager) -> None:
    text = "[stage.a]\nx = 1\n\n[stages.b]\nstage = 'scale'\nworkers = 0\n"
    with pytest.raises(PipelineValidationErrors) as info:
        Pipeline.from_toml_text(text, source="flow.toml").validate(pm)
    assert [(e.key, e.line) for e in info.value.errors] == [(None, 1), ("workers", 6)]
    assert "unknown top-level key 'stage'" in str(info.value.errors[0])


def test_a_bad_pipeline_setting_points_at_the_pipeline_line(pm: PluginManager) -> None:
    text = "[pipeline]\nname = 'p'\nbatch_size = -1\n[stages.a]\nstage = 'scale'\n[stages.b]\n"
    text += "stage = 'scale'\n"
    with pytest.raises(ParameterValueError) as info:  # two stages use it: reported once
        Pipeline.from_toml_text(text, source="flow.toml").validate(pm)
    assert (info.value.key, info.value.line) == ("batch_size", 3)


def test_a_cycle_through_defaulted_inputs_says_so(pm: PluginManager) -> None:
    pipeline = Pipeline().add_stage("a", "scale", inputs=["c"]).add_stage("b", "scale")
    with pytest.raises(PipelineCycleError) as info:
        pipeline.add_stage("c", "scale").validate(pm)
    message = str(info.value)
    assert "cycle: a -> b -> c -> a" in message
    assert "stage 'b' sets no inputs, so it reads 'a', the stage defined just before" in message
    assert "stage 'c' sets no inputs, so it reads 'b'" in message


def test_a_cycle_of_written_inputs_has_no_default_hint(pm: PluginManager) -> None:
    pipeline = Pipeline().add_stage("a", "scale", inputs=["b"])
    with pytest.raises(PipelineCycleError) as info:
        pipeline.add_stage("b", "scale", inputs=["a"]).validate(pm)
    assert "defined just before" not in str(info.value)


# -- settings far beyond the machine (issue 14, 14) --------------------------------------


def test_workers_far_beyond_the_cores_warn_and_are_kept_on_the_plan(pm: PluginManager) -> None:
    pipeline = Pipeline().add_stage("a", "scale", workers=workers_limit() + 1)
    with pytest.warns(PipelineResourceWarning, match="stage 'a': workers: ") as caught:
        plan = pipeline.validate(pm)
    assert [(w.stage, w.key) for w in plan.warnings] == [("a", "workers")]
    assert [w.message for w in caught] == list(plan.warnings)


def test_queues_beyond_the_memory_warn(pm: PluginManager) -> None:
    pipeline = Pipeline().add_stage("a", "scale", queue_size=10**15)
    with pytest.warns(PipelineResourceWarning, match="stage 'a': queue_size: .* of RAM"):
        plan = pipeline.validate(pm)
    assert [(w.stage, w.key) for w in plan.warnings] == [("a", "queue_size")]
    # On a machine with 8 EiB of RAM the same queue is no concern.
    assert resource_warnings(plan.stages, memory=2**63) == ()


def test_the_workers_limit_grows_with_the_cores() -> None:
    assert workers_limit(cores=1) == workers_limit(cores=4) == 64
    assert workers_limit(cores=16) == 256


def test_a_plan_within_the_machine_has_no_warnings(pm: PluginManager) -> None:
    plan = Pipeline().add_stage("a", "scale", workers=4, queue_size=1024).validate(pm)
    assert plan.warnings == ()  # and nothing was warned: warnings are errors here
