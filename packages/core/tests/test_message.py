from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import dataclass, field
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydotcompute import MessageValidationError, RingKernelMessage, message
from pydotcompute.runtime import uuids_from_ints


def test_plain_class_gets_standard_fields() -> None:
    @message
    class Ping:
        value: int = 0

    a, b = Ping(value=1), Ping()
    assert isinstance(a, RingKernelMessage)
    assert dataclasses.is_dataclass(a)
    assert isinstance(a.message_id, UUID) and a.message_id != b.message_id
    assert (a.priority, a.correlation_id) == (128, None)


def test_dataclass_with_declared_standard_fields_keeps_them() -> None:
    @message
    @dataclass
    class Declared:
        x: float
        message_id: UUID = field(default_factory=uuid4)
        priority: int = 7
        correlation_id: UUID | None = None

    msg = Declared(x=1.5)
    assert msg.priority == 7
    assert [f.name for f in dataclasses.fields(msg)] == [
        "x",
        "message_id",
        "priority",
        "correlation_id",
        "deadline",
    ]


def test_message_with_arguments_and_frozen_dataclass() -> None:
    @message(name="tests.Frozen")
    @dataclass(frozen=True)
    class Frozen:
        x: int

    msg = Frozen(x=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.x = 2  # type: ignore[misc]
    assert type(msg).__wire_name__ == "tests.Frozen"


def test_user_post_init_still_runs() -> None:
    @message
    @dataclass
    class Checked:
        n: int

        def __post_init__(self) -> None:
            if self.n < 0:
                raise ValueError("n must be >= 0")

    with pytest.raises(ValueError, match="n must be"):
        Checked(n=-1)


@pytest.mark.parametrize("priority", [-1, 256, 1000])
def test_priority_out_of_range_names_class_and_field(priority: int) -> None:
    @message
    class Prio:
        pass

    with pytest.raises(MessageValidationError, match=r"Prio\.priority must be in 0\.\.255"):
        Prio(priority=priority)


@pytest.mark.parametrize("priority", ["high", 1.5, True, None])
def test_priority_of_wrong_type_is_refused(priority: object) -> None:
    @message
    class Prio:
        pass

    with pytest.raises(MessageValidationError, match="priority must be an int"):
        Prio(priority=priority)


def test_priority_bounds_are_inclusive() -> None:
    @message
    class Prio:
        pass

    assert Prio(priority=0).priority == 0
    assert Prio(priority=255).priority == 255


def test_bad_ids_are_refused() -> None:
    @message
    class Ids:
        pass

    with pytest.raises(MessageValidationError, match="message_id must be a UUID"):
        Ids(message_id="abc")
    with pytest.raises(MessageValidationError, match="correlation_id must be a UUID or None"):
        Ids(correlation_id=42)


def test_reply_sets_correlation_id() -> None:
    @message
    class Request:
        q: str = ""

    @message
    class Response:
        a: str = ""

    req = Request(q="?")
    resp = req.reply(Response, a="!")
    assert isinstance(resp, Response)
    assert resp.correlation_id == req.message_id
    assert resp.a == "!"


def test_decorating_a_non_class_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="decorates a class"):
        message(lambda: None)  # type: ignore[arg-type]


@pytest.mark.parametrize("deadline", [float("nan"), float("inf"), "soon", True])
def test_bad_deadline_is_refused(deadline: object) -> None:
    @message
    class Timed:
        pass

    with pytest.raises(MessageValidationError, match=r"Timed\.deadline must be None or a finite"):
        Timed(deadline=deadline)


def test_declared_uuid4_factory_still_gives_version_4_ids() -> None:
    @message
    @dataclass
    class Declared:
        message_id: UUID = field(default_factory=uuid4)

    ids = {Declared().message_id for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.version == 4 and i.variant == "specified in RFC 4122" for i in ids)
    parsed = next(iter(ids))
    assert UUID(str(parsed)) == parsed and hash(UUID(str(parsed))) == hash(parsed)


@message(name="tests.LazyId")
@dataclass
class LazyId:
    x: int = 0


def test_a_message_id_is_drawn_once_and_kept_by_copies_pickles_and_the_wire() -> None:
    msg = LazyId(x=1)
    first = msg.message_id
    assert msg.message_id is first  # read twice: the same id
    assert copy.copy(msg).message_id == first
    assert pickle.loads(pickle.dumps(msg)).message_id == first
    assert LazyId.from_bytes(msg.to_bytes()).message_id == first
    assert dataclasses.replace(msg, x=2).message_id == first
    assert msg.reply(LazyId).correlation_id == first
    # Copied or pickled before anyone read the id: both sides still agree on one.
    fresh = LazyId(x=3)
    assert copy.deepcopy(fresh).message_id == fresh.message_id
    fresh = LazyId(x=4)
    assert pickle.loads(pickle.dumps(fresh)).message_id == fresh.message_id
    ids = {LazyId().message_id for _ in range(1000)}
    assert len(ids) == 1000 and all(i.version == 4 for i in ids)


def test_a_given_message_id_is_kept_and_a_frozen_one_cannot_be_reassigned() -> None:
    @message
    @dataclass(frozen=True)
    class Frozen:
        x: int = 0

    given = uuid4()
    msg = Frozen(x=1, message_id=given)
    assert msg.message_id is given
    lazy = Frozen()
    with pytest.raises(dataclasses.FrozenInstanceError):
        lazy.message_id = given  # type: ignore[misc]
    assert lazy.message_id != given and hash(lazy) == hash(lazy)


def test_a_user_post_init_sees_a_real_id() -> None:
    seen: list[object] = []

    @message
    @dataclass
    class Watched:
        def __post_init__(self) -> None:
            seen.append(self.message_id)

    msg = Watched()
    assert isinstance(seen[0], UUID) and seen[0] == msg.message_id


@given(st.lists(st.integers(min_value=0, max_value=2**128 - 1), max_size=20))
def test_uuids_from_ints_are_the_uuids_uuid_itself_builds(values: list[int]) -> None:
    made = uuids_from_ints(values)
    expected = [UUID(int=v) for v in values]
    assert made == expected
    for one, other in zip(made, expected, strict=True):
        assert (str(one), hash(one), one.is_safe) == (str(other), hash(other), other.is_safe)
        assert pickle.loads(pickle.dumps(one)) == other


def test_uuids_from_ints_join_a_shared_high_half() -> None:
    high = 0x1234_5678_9ABC_DEF0 << 64
    assert uuids_from_ints([0, 7, 2**64 - 1], high=high) == [
        UUID(int=high),
        UUID(int=high | 7),
        UUID(int=high | (2**64 - 1)),
    ]
