"""Stage definitions and their parameters: what a plugin declares is what is checked."""

from __future__ import annotations

from typing import Any

import pytest
from pipeline_helpers import NEEDS, SCALE
from pydotcompute.errors import ParameterValueError, UnknownParameterError
from pydotcompute.stage import REQUIRED, Param, StageDefinition


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        (Param(float), 3, 3.0),
        (Param(float), 2.5, 2.5),
        (Param(int), 7, 7),
        (Param(str, choices=("a", "b")), "b", "b"),
        (Param(tuple, items=str), ["x", "y"], ("x", "y")),
        (Param(tuple, items=float), [1, 2.5], (1.0, 2.5)),
        (Param(bool), True, True),
        (Param((int, str)), "auto", "auto"),
        (Param(float, nullable=True), None, None),
        (Param(int, minimum=1, maximum=3), 3, 3),
    ],
)
def test_good_values_are_normalized(param: Param, value: Any, expected: Any) -> None:
    got = param.check(value)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("param", "value", "match"),
    [
        (Param(float), "1.5", "expected a number"),
        (Param(float), True, "expected a number"),
        (Param(int), 1.0, "expected an int"),
        (Param(int), False, "expected an int"),
        (Param(bool), 1, "expected true or false"),
        (Param(str), None, "expected a string, got None"),
        (Param(tuple, items=str), ["x", 1], "expected a list of str"),
        (Param(tuple, items=str, choices=("a", "b")), ["a", "c"], r"'c' not among \{'a', 'b'\}"),
        (Param(str, choices=("a",)), "z", r"'z' is not among \{'a'\}"),
        (Param(int, minimum=1), 0, "below the minimum 1"),
        (Param(float, maximum=1.0), 1.5, "above the maximum 1.0"),
    ],
)
def test_bad_values_say_what_was_expected(param: Param, value: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        param.check(value)


def test_a_custom_validator_runs_last() -> None:
    def even(value: int) -> None:
        if value % 2:
            raise ValueError("must be even")

    param = Param(int, validate=even)
    assert param.check(4) == 4
    with pytest.raises(ValueError, match="must be even"):
        param.check(3)


def test_describe_reads_well() -> None:
    assert Param(int, minimum=1).describe() == "an int >= 1"
    assert Param(tuple, items=str).describe() == "a list of str"
    assert Param(float, nullable=True).describe() == "a number (or none)"
    assert repr(REQUIRED) == "REQUIRED"


def test_resolve_fills_defaults_and_refuses_unknown_names() -> None:
    assert SCALE.resolve_params({}, stage="s") == {"factor": 2.0, "poison": None}
    with pytest.raises(UnknownParameterError) as info:
        SCALE.resolve_params({"factor": 1, "extra": 2}, stage="s")
    assert info.value.key == "params.extra" and info.value.stage == "s"
    with pytest.raises(ParameterValueError, match="parameter 'factor' is required") as missing:
        NEEDS.resolve_params({}, stage="n")
    assert missing.value.key == "params"


def _factory(setup: Any) -> Any:
    async def kernel(ctx: Any) -> None:
        return None

    return kernel


def test_a_definition_checks_itself() -> None:
    with pytest.raises(ValueError, match="non-empty str"):
        StageDefinition(name="", factory=_factory, summary="x")
    with pytest.raises(TypeError, match="factory must be callable"):
        StageDefinition(name="x", factory=42, summary="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="parameter 'p' must be a Param"):
        StageDefinition(name="x", factory=_factory, summary="x", params={"p": 3})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="default of parameter 'p' is invalid"):
        StageDefinition(
            name="x", factory=_factory, summary="x", params={"p": Param(int, default="a")}
        )
