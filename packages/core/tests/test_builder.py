from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field
from uuid import UUID

import numpy as np
import pytest
from pydotcompute import Record, message
from pydotcompute.errors import ArgumentTypeError
from pydotcompute.runtime import new_message_id, unchecked_builder, wire_round_trip


@message(name="tests.builder.Reading")
class Reading:
    value: float
    tags: dict[str, float] = field(default_factory=dict)
    key: int | None = None


def test_a_built_message_equals_the_one_the_class_builds() -> None:
    cid = new_message_id()
    build = unchecked_builder(Reading, "value", "key", "correlation_id")
    built = build(1.5, 3, cid)
    made = Reading(value=1.5, key=3, correlation_id=cid, message_id=built.message_id)
    assert type(built) is Reading
    assert built == made
    assert (built.priority, built.deadline, built.tags) == (128, None, {})


def test_every_build_gets_its_own_id_and_its_own_default_factory_value() -> None:
    build = unchecked_builder(Reading, "value")
    a, b = build(1.0), build(2.0)
    assert isinstance(a.message_id, UUID) and a.message_id != b.message_id
    assert a.message_id == a.message_id  # drawn once, then kept
    a.tags["x"] = 1.0
    assert b.tags == {}


def test_a_built_message_crosses_the_wire_and_pickles_with_its_id() -> None:
    built = unchecked_builder(Reading, "value", "tags")(2.5, {"mean": 2.5})
    assert wire_round_trip(built) == built
    assert pickle.loads(pickle.dumps(built)) == built


def test_a_built_record_is_a_record_with_the_given_id() -> None:
    row, mid = np.arange(3, dtype=np.float32), new_message_id()
    built = unchecked_builder(Record, "values", "message_id")(row, mid)
    assert (built.values is row, built.message_id, built.key) == (True, mid, None)


def test_a_frozen_message_is_built_too() -> None:
    @message
    @dataclass(frozen=True)
    class Frozen:
        x: int

    built = unchecked_builder(Frozen, "x")(4)
    assert built.x == 4 and built.priority == 128
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.x = 5  # type: ignore[misc]


def test_what_a_builder_cannot_build_is_refused_naming_the_class_and_field() -> None:
    @message
    class Checked:
        x: int

        def __post_init__(self) -> None:
            if self.x < 0:
                raise ValueError("x")

    with pytest.raises(ArgumentTypeError, match="Checked has a __post_init__"):
        unchecked_builder(Checked, "x")
    with pytest.raises(ArgumentTypeError, match=r"Reading.*\['nope'\]"):
        unchecked_builder(Reading, "value", "nope")
    with pytest.raises(ArgumentTypeError, match="distinct"):
        unchecked_builder(Reading, "value", "value")
    with pytest.raises(ArgumentTypeError, match=r"Reading\.value has no default"):
        unchecked_builder(Reading, "key")
    with pytest.raises(ArgumentTypeError, match="takes a @message class"):
        unchecked_builder(dict, "x")  # type: ignore[arg-type]
