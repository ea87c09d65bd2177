"""A pipeline's input dtype: written in Python or TOML, checked by validate, kept by the run."""

from __future__ import annotations

import numpy as np
import pytest
from pipeline_helpers import collect, make_plugins
from pydotcompute import Pipeline
from pydotcompute.errors import ParameterValueError, PipelineValidationErrors
from pydotcompute.pipeline import (
    INPUT_DTYPES,
    cast_problem,
    input_dtype,
    parse_dtype,
    records_from_array,
    rows_that_fit,
)
from pydotcompute.plugins import PluginManager
from pydotcompute.stage import RecordBatch


@pytest.fixture
def pm() -> PluginManager:
    return make_plugins()


def test_unset_the_plan_has_no_dtype_and_text_reads_as_float64(pm: PluginManager) -> None:
    plan = Pipeline().add_stage("s", "hold").validate(pm)
    assert plan.dtype is None
    assert input_dtype(None) == np.float64
    assert input_dtype(None, np.dtype(np.float16)) == np.float16  # an array keeps its own
    assert input_dtype(None, np.dtype(np.int32)) == np.float64
    assert input_dtype(np.dtype(np.float32), np.dtype(np.float64)) == np.float32


@pytest.mark.parametrize("dtype", INPUT_DTYPES)
def test_the_dtype_is_the_pipelines_own_in_python_and_in_defaults(
    pm: PluginManager, dtype: str
) -> None:
    assert Pipeline(dtype=dtype).add_stage("s", "hold").validate(pm).dtype == dtype
    by_default = Pipeline(defaults={"dtype": dtype, "workers": 2}).add_stage("s", "hold")
    plan = by_default.validate(pm)
    assert plan.dtype == dtype and plan["s"].workers == 2


def test_the_dtype_in_a_pipeline_file(pm: PluginManager) -> None:
    text = '[pipeline]\nname = "p"\ndtype = "float16"\n\n[stages.s]\nstage = "hold"\n'
    assert Pipeline.from_toml_text(text).validate(pm).dtype == "float16"


@pytest.mark.parametrize(
    ("written", "hint"),
    [
        ("bfloat16", "numpy arrays have no bfloat16"),
        ("float128", "got 'float128'"),
        (32, "got 32"),
    ],
)
def test_a_bad_dtype_is_reported_at_its_line(pm: PluginManager, written: object, hint: str) -> None:
    value = f'"{written}"' if isinstance(written, str) else written
    text = f'[pipeline]\nname = "p"\ndtype = {value}\n\n[stages.s]\nstage = "hold"\n'
    with pytest.raises(ParameterValueError, match="dtype must be one of") as info:
        Pipeline.from_toml_text(text, source="p.toml").validate(pm)
    assert info.value.line == 3 and info.value.source == "p.toml"
    assert info.value.stage is None  # the pipeline's, not a stage's
    assert hint in str(info.value)


def test_a_bad_dtype_is_reported_with_the_other_mistakes(pm: PluginManager) -> None:
    pipeline = Pipeline(dtype="double").add_stage("s", "hold", workers=0)
    with pytest.raises(PipelineValidationErrors) as info:
        pipeline.validate(pm)
    assert {type(e) for e in info.value.errors} == {ParameterValueError}
    assert len(info.value.errors) == 2


def test_a_dtype_given_twice_differently_is_a_mistake(pm: PluginManager) -> None:
    pipeline = Pipeline(dtype="float32", defaults={"dtype": "float16"}).add_stage("s", "hold")
    with pytest.raises(ParameterValueError, match="dtype is given twice: 'float32', and 'float16'"):
        pipeline.validate(pm)
    same = Pipeline(dtype="float32", defaults={"dtype": "float32"}).add_stage("s", "hold")
    assert same.validate(pm).dtype == "float32"


@pytest.mark.parametrize(
    ("value", "dtype", "problem"),
    [
        (16777216.0, "float32", None),
        (16777217.0, "float32", "16777217 is not exact in float32 (it would become 16777216"),
        (1e39, "float32", "1e+39 overflows float32 (largest 3.402823e+38)"),
        (1e39, "float64", None),
        (2049.0, "float16", "2049 is not exact in float16 (it would become 2048"),
        (65504.0, "float16", None),
        (65505.0, "float16", "overflows float16 (largest 65504)"),
        (2**53 + 1, "float64", f"{2**53 + 1} is not exact in float64"),
        (2**53 + 1, "float32", f"{2**53 + 1} is not exact in float32"),
        (0.1, "float16", None),  # a fraction rounds: that is what a dtype is
        (float("inf"), "float16", None),
        (float("nan"), "float16", None),
    ],
)
def test_cast_problem(value: float, dtype: str, problem: str | None) -> None:
    found = cast_problem(value, parse_dtype(dtype))
    assert found == problem if problem is None else (found is not None and problem in found)


def test_rows_that_fit_names_the_first_bad_value_of_each_row() -> None:
    array = np.array([[1, 2], [3, 16777217], [1e39, 16777219], [4, 5]])
    good, problems = rows_that_fit(array, np.dtype(np.float32))
    assert good.tolist() == [True, False, False, True]
    assert [(row, column) for row, column, _ in problems] == [(1, 1), (2, 0)]
    good, problems = rows_that_fit(array[[0, 3]].astype(np.float16), np.dtype(np.float32))
    assert good.all() and problems == []  # a narrower float always fits


async def test_a_run_keeps_float64_values_exact(pm: PluginManager) -> None:
    x = np.array([[16777217.0, 16777219.0], [0.1, 1e39]])
    pipeline = Pipeline().add_stage("s", "hold")
    (result,) = await collect(pipeline, records_from_array(x, run_id=1), pm)
    assert type(result) is RecordBatch and result.values.dtype == np.float64
    assert result.values.tolist() == x.tolist()


async def test_a_run_under_float16_feeds_float16(pm: PluginManager) -> None:
    x = np.array([[0.5, 2048.0], [-1.0, 3.0]], dtype=np.float16)
    pipeline = Pipeline(dtype="float16").add_stage("s", "hold")
    plan = pipeline.validate(pm)
    (result,) = await collect(pipeline, records_from_array(x, run_id=1, dtype=plan.dtype), pm)
    assert result.values.dtype == np.float16
    np.testing.assert_array_equal(result.values, x)
