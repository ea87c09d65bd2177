from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydotcompute import MessageTypeError, MessageValidationError, message
from pydotcompute.runtime import decode_message


@message
@dataclass
class Inner:
    label: str = ""


@message
@dataclass
class Everything:
    i: int = 0
    f: float = 0.0
    s: str = ""
    b: bytes = b""
    flag: bool = False
    nothing: None = None
    items: list[Any] = field(default_factory=list)
    mapping: dict[Any, Any] = field(default_factory=dict)
    ref: UUID | None = None
    array: Any = None
    nested: Any = None


def test_round_trip_of_every_supported_field_type() -> None:
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    msg = Everything(
        i=-(2**40),
        f=1.25,
        s="héllo",
        b=b"\x00\xff",
        flag=True,
        items=[1, "two", [3.0], {"k": None}],
        mapping={"a": 1, 2: "b"},
        ref=uuid4(),
        array=array,
        nested=Inner(label="x", priority=3),
        priority=200,
        correlation_id=uuid4(),
    )
    back = Everything.from_bytes(msg.to_bytes())
    assert isinstance(back, Everything)
    for name in (
        "i",
        "f",
        "s",
        "b",
        "flag",
        "nothing",
        "items",
        "mapping",
        "ref",
        "message_id",
        "priority",
        "correlation_id",
    ):
        assert getattr(back, name) == getattr(msg, name), name
    np.testing.assert_array_equal(back.array, array)
    assert back.array.dtype == np.float32 and back.array.flags.writeable
    assert back.nested == msg.nested


@pytest.mark.parametrize(
    "dtype", ["bool", "int8", "uint16", "int64", "float16", "float64", "complex64"]
)
def test_numpy_arrays_of_each_kind_round_trip(dtype: str) -> None:
    array = np.ones((2, 3), dtype=dtype)
    back = Everything.from_bytes(Everything(array=array).to_bytes())
    assert back.array.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back.array, array)


def test_non_contiguous_and_empty_arrays_round_trip() -> None:
    strided = np.arange(20, dtype=np.int32).reshape(4, 5)[:, ::2]
    assert (
        Everything.from_bytes(Everything(array=strided).to_bytes()).array.tolist()
        == strided.tolist()
    )
    empty = np.zeros((0, 7), dtype=np.float32)
    assert Everything.from_bytes(Everything(array=empty).to_bytes()).array.shape == (0, 7)


def test_unencodable_field_is_named() -> None:
    with pytest.raises(MessageValidationError, match=r"Everything\.items cannot be sent"):
        Everything(items=[object()]).to_bytes()
    with pytest.raises(MessageValidationError, match=r"Everything\.array cannot be sent"):
        Everything(array=np.array([object()])).to_bytes()


def test_from_bytes_of_another_type_is_a_type_error() -> None:
    with pytest.raises(MessageTypeError, match="hold a Inner, not a Everything"):
        Everything.from_bytes(Inner().to_bytes())


def _envelope(name: str, fields: dict[str, Any]) -> bytes:
    return msgpack.packb({"t": name, "f": fields}, use_bin_type=True)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "malformed wire bytes"),
        (b"\xc1", "malformed wire bytes"),
        (msgpack.packb([1, 2]), "not a message envelope"),
        (_envelope("no.such.Type", {}), "unknown message type 'no.such.Type'"),
        (_envelope(Inner.__wire_name__, {"nope": 1}), "Inner has no field"),
        (_envelope(Inner.__wire_name__, {"priority": 999}), r"Inner\.priority must be in"),
        (
            msgpack.packb(
                {"t": Inner.__wire_name__, "f": {"message_id": msgpack.ExtType(1, b"x")}}
            ),
            "UUID needs 16 bytes",
        ),
        (
            msgpack.packb({"t": Inner.__wire_name__, "f": {"label": msgpack.ExtType(9, b"")}}),
            "unknown extension type code 9",
        ),
        (
            msgpack.packb(
                {
                    "t": Everything.__wire_name__,
                    "f": {
                        "array": msgpack.ExtType(2, msgpack.packb([["<f4", [2, 2]], b"\x00" * 3]))
                    },
                }
            ),
            "needs 16 bytes, got 3",
        ),
        (
            msgpack.packb(
                {
                    "t": Everything.__wire_name__,
                    "f": {"array": msgpack.ExtType(2, msgpack.packb([["|O", [1]], b"\x00" * 8]))},
                }
            ),
            "are not accepted",
        ),
        (
            msgpack.packb(
                {
                    "t": Everything.__wire_name__,
                    "f": {"array": msgpack.ExtType(2, msgpack.packb([["<f4", [-1]], b""]))},
                }
            ),
            "malformed array shape",
        ),
        (_envelope(Inner.__wire_name__, {}) + b"\x00", "malformed wire bytes"),
    ],
)
def test_malformed_bytes_raise_a_clear_error(data: bytes, match: str) -> None:
    with pytest.raises(MessageValidationError, match=match):
        decode_message(data)


def test_non_bytes_input_is_refused() -> None:
    with pytest.raises(MessageValidationError, match="must be bytes"):
        decode_message("text")  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzzed_bytes_never_raise_anything_but_the_documented_error(data: bytes) -> None:
    with contextlib.suppress(MessageValidationError):  # the documented outcome for garbage
        decode_message(data)


@pytest.mark.parametrize("dtype", [b",,,", b",f8", b"(2)", b"[(a"])
def test_an_array_with_a_malformed_dtype_is_refused_naming_it(dtype: bytes) -> None:
    valid = Everything(items=[1, 2], array=np.arange(3.0), nested=Inner()).to_bytes()
    assert valid.count(b"<f8") == 1
    with pytest.raises(MessageValidationError, match="malformed array dtype"):
        decode_message(valid.replace(b"<f8", dtype))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_fuzzed_mutations_of_valid_bytes(data: st.DataObject) -> None:
    valid = bytearray(Everything(items=[1, 2], array=np.arange(3.0), nested=Inner()).to_bytes())
    position = data.draw(st.integers(0, len(valid) - 1))
    valid[position] = data.draw(st.integers(0, 255))
    with contextlib.suppress(MessageValidationError):  # the documented outcome
        decode_message(bytes(valid))
