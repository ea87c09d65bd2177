"""Pipelines from TOML: the format, and every error located by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipeline_helpers import make_plugins
from pydotcompute import Pipeline
from pydotcompute.errors import (
    DanglingInputError,
    ParameterValueError,
    PipelineCycleError,
    PipelineValidationError,
    UnknownBackendError,
    UnknownParameterError,
    UnknownStageError,
)
from pydotcompute.pipeline import TomlLines
from pydotcompute.plugins import PluginManager


@pytest.fixture
def pm() -> PluginManager:
    return make_plugins()


GOOD = """\
# a comment
[pipeline]
name = "demo"
batch_size = 32

[stages.first]
stage = "scale"

[stages.second]
stage = "scale"
inputs = ["first"]
workers = 2
queue_size = 64
backpressure = "drop_oldest"
backend = "numpy"
ring_rows = 4096

[stages.second.params]
factor = 3

[stages.third]
stage = "scale"
params = { factor = 0.5 }
"""


def test_a_full_file_reads_into_a_plan(pm: PluginManager, tmp_path: Path) -> None:
    path = tmp_path / "demo.toml"
    path.write_text(GOOD)
    pipeline = Pipeline.from_toml(path)
    assert pipeline.name == "demo" and pipeline.source == str(path)
    plan = pipeline.validate(pm)
    assert [s.name for s in plan.stages] == ["first", "second", "third"]
    second = plan["second"]
    assert (second.workers, second.queue_size, second.batch_size) == (2, 64, 32)
    assert second.ring_rows == 4096 and plan["first"].ring_rows is None
    assert second.backpressure.value == "drop_oldest" and second.params["factor"] == 3.0
    assert plan["third"].inputs == ("second",)  # the stage defined before
    assert plan["third"].params["factor"] == 0.5


def test_the_stage_type_defaults_to_the_table_name(pm: PluginManager) -> None:
    plan = Pipeline.from_toml_text("[stages.scale]\n[stages.hold]\n").validate(pm)
    assert [(s.name, s.definition.name) for s in plan.stages] == [
        ("scale", "scale"),
        ("hold", "hold"),
    ]


def test_the_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "my_flow.toml"
    path.write_text("[stages.scale]\n")
    assert Pipeline.from_toml(path).name == "my_flow"


def test_empty_inputs_make_a_second_source(pm: PluginManager) -> None:
    plan = Pipeline.from_toml_text(
        "[stages.a]\nstage='scale'\n[stages.b]\nstage='scale'\ninputs = []\n"
    ).validate(pm)
    assert [s.name for s in plan.sources] == ["a", "b"]


def located(text: str, pm: PluginManager) -> PipelineValidationError:
    with pytest.raises(PipelineValidationError) as info:
        Pipeline.from_toml_text(text, source="flow.toml").validate(pm)
    return info.value


def test_unknown_stage_is_located_at_its_stage_key(pm: PluginManager) -> None:
    err = located("[stages.a]\nstage = 'scale'\n\n[stages.b]\nworkers = 1\nstage = 'nope'\n", pm)
    assert isinstance(err, UnknownStageError)
    assert (err.source, err.line, err.stage) == ("flow.toml", 6, "b")
    assert str(err).startswith(
        "flow.toml:6: stage 'b': no installed plugin provides a stage named 'nope'"
    )


def test_an_implicit_unknown_stage_is_located_at_its_table(pm: PluginManager) -> None:
    err = located("[stages.a]\nstage = 'scale'\n\n[stages.mystery]\n", pm)
    assert isinstance(err, UnknownStageError) and err.line == 4


def test_unknown_parameter_is_located_at_its_key(pm: PluginManager) -> None:
    err = located("[stages.a]\nstage = 'scale'\n[stages.a.params]\nfactor = 2\nfacter = 3\n", pm)
    assert isinstance(err, UnknownParameterError)
    assert (err.line, err.stage) == (5, "a")
    assert "flow.toml:5: stage 'a': unknown parameter 'facter'" in str(err)


def test_unknown_parameter_in_an_inline_table_is_located_at_params(pm: PluginManager) -> None:
    err = located("[stages.a]\nstage = 'scale'\nparams = { facter = 3 }\n", pm)
    assert isinstance(err, UnknownParameterError) and err.line == 3


def test_bad_parameter_value_is_located_at_its_key(pm: PluginManager) -> None:
    err = located("[stages.a]\nstage = 'scale'\n\n[stages.a.params]\n\nfactor = 'x'\n", pm)
    assert isinstance(err, ParameterValueError) and err.line == 6


def test_missing_required_parameter_is_located_at_the_stage(pm: PluginManager) -> None:
    err = located("[stages.a]\nstage = 'scale'\n[stages.n]\nstage = 'needs'\n", pm)
    assert isinstance(err, ParameterValueError) and (err.line, err.stage) == (3, "n")


def test_unknown_setting_is_located_and_points_to_params(pm: PluginManager) -> None:
    err = located("[stages.a]\nstage = 'scale'\nfactor = 3\n", pm)
    assert isinstance(err, UnknownParameterError) and err.line == 3
    assert "unknown setting 'factor'" in str(err) and "[stages.a.params]" in str(err)


def test_bad_setting_is_located_at_its_key(pm: PluginManager) -> None:
    err = located("[stages.a]\nstage = 'scale'\nworkers = 0\n", pm)
    assert isinstance(err, ParameterValueError) and err.line == 3
    err = located("[stages.a]\nstage = 'scale'\n\nbackpressure = 'maybe'\n", pm)
    assert isinstance(err, ParameterValueError) and err.line == 4


def test_unknown_backend_is_located_at_its_key(pm: PluginManager) -> None:
    err = located("[stages.a]\nstage = 'scale'\nbackend = 'cuda'\n", pm)
    assert isinstance(err, UnknownBackendError) and err.line == 3


def test_dangling_input_is_located_at_inputs(pm: PluginManager) -> None:
    err = located(
        "[stages.a]\nstage = 'scale'\n[stages.b]\nstage = 'scale'\ninputs = ['a', 'zz']\n", pm
    )
    assert isinstance(err, DanglingInputError) and (err.line, err.stage) == (5, "b")


def test_inputs_that_are_not_a_list(pm: PluginManager) -> None:
    err = located("[stages.a]\nstage = 'scale'\n[stages.b]\nstage = 'scale'\ninputs = 'a'\n", pm)
    assert isinstance(err, ParameterValueError) and err.line == 5


def test_a_cycle_is_located_at_the_inputs_of_its_first_stage(pm: PluginManager) -> None:
    text = (
        "[stages.a]\nstage = 'scale'\ninputs = ['b']\n[stages.b]\nstage = 'scale'\ninputs = ['a']\n"
    )
    err = located(text, pm)
    assert isinstance(err, PipelineCycleError) and (err.line, err.stage) == (3, "a")
    assert "a -> b -> a" in str(err)


def test_invalid_toml_names_the_line(pm: PluginManager) -> None:
    err = located("[stages.a]\nstage = 'scale'\nworkers = = 2\n", pm)
    assert err.line == 3 and "not valid TOML" in str(err) and str(err).startswith("flow.toml:3:")


def test_array_of_tables_is_refused_with_the_right_form(pm: PluginManager) -> None:
    err = located("[[stages]]\nname = 'a'\n", pm)
    assert err.line == 1 and "write [stages.NAME], not [[stages]]" in str(err)


def test_unknown_top_level_key(pm: PluginManager) -> None:
    err = located("[stages.a]\nstage = 'scale'\n\n[stage.b]\n", pm)
    assert isinstance(err, UnknownParameterError) and err.line == 4
    assert "unknown top-level key 'stage'" in str(err)


def test_unknown_pipeline_key(pm: PluginManager) -> None:
    err = located("[pipeline]\nname = 'x'\nworker = 2\n[stages.a]\nstage = 'scale'\n", pm)
    assert isinstance(err, UnknownParameterError) and err.line == 3


def test_a_bad_pipeline_default_is_located(pm: PluginManager) -> None:
    err = located("[pipeline]\nworkers = 0\n[stages.a]\nstage = 'scale'\n", pm)
    assert isinstance(err, ParameterValueError)  # reported against the stage using it
    assert err.stage == "a"


def test_a_stage_that_is_not_a_table(pm: PluginManager) -> None:
    err = located("[stages]\na = 3\n", pm)
    assert err.line == 2 and "stages.a must be a table" in str(err)


def test_no_stages_at_all(pm: PluginManager) -> None:
    err = located("[pipeline]\nname = 'empty'\n", pm)
    assert "the pipeline has no stages" in str(err) and err.source == "flow.toml"


def test_a_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Pipeline.from_toml(tmp_path / "nope.toml")


def test_the_line_scanner_understands_toml_shapes() -> None:
    lines = TomlLines(
        '[stages."odd.name"]\n'
        "text = '''\n"
        "inputs = ['fake']\n"
        "'''\n"
        "inputs = ['real']\n"
        "  [ stages . b . params ]  # spaced\n"
        "x.y = 1\n"
        "[[runs]]\n"
        "k = 1\n"
    )
    assert lines.line("stages", "odd.name") == 1
    assert lines.line("stages", "odd.name", "inputs") == 5  # not the line inside the string
    assert lines.line("stages", "b", "params") == 6
    assert lines.line("stages", "b", "params", "x", "y") == 7
    assert lines.line("stages", "b", "params", "x") == 7  # its first descendant
    assert lines.line("stages", "b", "params", "zz") == 6  # else the nearest ancestor
    assert lines.line("runs", "k") == 9
    assert lines.line("nowhere") is None


def test_a_bad_ring_size_names_the_stage_and_line(pm: PluginManager) -> None:
    text = "[stages.scale]\nring_rows = 0\n"
    with pytest.raises(
        PipelineValidationError, match=r":2: .*'scale'.*ring_rows must be a positive"
    ):
        Pipeline.from_toml_text(text, source="p.toml").validate(pm)


def test_a_binary_pipeline_file_is_a_validation_error_naming_file_and_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "binary.toml"
    path.write_bytes(b'[pipeline]\nname = "x"\n\xff\xfe\x00')
    with pytest.raises(PipelineValidationError) as caught:
        Pipeline.from_toml(path)
    assert caught.value.line == 3
    assert str(path) in str(caught.value)
    assert "byte 0xff at offset 22 is not UTF-8" in str(caught.value)
