"""The msgpack wire form of messages: compact, typed, never pickle.

Layout: a msgpack map ``{"t": wire name, "f": {field: value}}``. Field values may be
None, bool, int, float, str, bytes, lists (tuples become lists), dicts with str or int
keys, UUIDs, numpy arrays of bool/int/uint/float/complex dtype (dtype, shape and raw
bytes), numpy scalars (sent as Python numbers) and nested messages. An array of another
kind (a compute backend's device tensor) has a wire form only when the encoder is given
``to_numpy``, which brings it to the host: it then travels, and decodes, as numpy.
Anything else is refused at encode time, naming the field; any malformed input is
refused at decode time with :class:`MessageValidationError`, naming the field where
there is one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

import msgpack
import numpy as np
import numpy.typing as npt

from ..errors import ArgumentTypeError, MessageTypeError, MessageValidationError
from ._message import RingKernelMessage, message_type_named

__all__ = ["decode_message", "encode_message", "wire_round_trip"]

_M = TypeVar("_M", bound=RingKernelMessage)
#: Brings an array that is not numpy (a device tensor) to the host.
ToNumpy = Callable[[Any], npt.NDArray[Any]]

_EXT_UUID = 1
_EXT_NDARRAY = 2
_EXT_MESSAGE = 3
# numpy kinds that round-trip as raw bytes: bool, int, uint, float, complex.
_ARRAY_KINDS = frozenset("biufc")


def _array_ext(value: npt.NDArray[Any]) -> msgpack.ExtType:
    if value.dtype.kind not in _ARRAY_KINDS:
        raise ArgumentTypeError(f"numpy arrays of dtype {value.dtype} have no wire form")
    header = [value.dtype.str, list(value.shape)]
    body = np.ascontiguousarray(value).tobytes()
    return msgpack.ExtType(_EXT_NDARRAY, msgpack.packb([header, body]))


def _encoder(to_numpy: ToNumpy | None) -> Callable[[Any], Any]:
    def encode_ext(value: Any) -> Any:
        if isinstance(value, UUID):
            return msgpack.ExtType(_EXT_UUID, value.bytes)
        if isinstance(value, np.ndarray):
            return _array_ext(value)
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, RingKernelMessage):
            return msgpack.ExtType(_EXT_MESSAGE, encode_message(value, to_numpy=to_numpy))
        if to_numpy is not None and hasattr(value, "__dlpack__"):
            return _array_ext(np.asarray(to_numpy(value)))
        raise ArgumentTypeError(f"values of type {type(value).__qualname__} have no wire form")

    return encode_ext


_ENCODE_EXT = _encoder(None)


def encode_message(msg: RingKernelMessage, *, to_numpy: ToNumpy | None = None) -> bytes:
    """Encode ``msg``. ``to_numpy`` brings a field's device array (anything with
    ``__dlpack__`` that is not numpy, such as a torch tensor on a GPU) to the host, e.g.
    ``functools.partial(pydotcompute.backend.to_host, backend)``; without it such a
    field has no wire form.

    Raises:
        MessageValidationError: a field's value has no wire form (naming the field).
        MessageTypeError: ``msg`` is not a message.
    """
    if not isinstance(msg, RingKernelMessage):
        raise MessageTypeError(
            f"a {type(msg).__qualname__} is not a message, so it has no wire form: "
            "decorate its class with @message"
        )
    default = _ENCODE_EXT if to_numpy is None else _encoder(to_numpy)
    fields = {f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)}  # type: ignore[arg-type]
    try:
        return msgpack.packb(  # type: ignore[no-any-return]
            {"t": type(msg).__wire_name__, "f": fields}, default=default, use_bin_type=True
        )
    except (TypeError, ValueError, OverflowError) as exc:
        culprit = _find_unencodable_field(fields, default)
        raise MessageValidationError(
            f"{type(msg).__qualname__}.{culprit} cannot be sent on the wire: {exc}"
        ) from exc


def _find_unencodable_field(fields: dict[str, Any], default: Callable[[Any], Any]) -> str:
    for name, value in fields.items():
        try:
            msgpack.packb(value, default=default, use_bin_type=True)
        except (TypeError, ValueError, OverflowError):
            return name
    return "<unknown field>"


class _Ext:
    """An extension value as read, decoded once its field is known (so that an error
    can name the field)."""

    __slots__ = ("code", "data")

    def __init__(self, code: int, data: bytes) -> None:
        self.code = code
        self.data = data


def _decode_ext(code: int, data: bytes) -> Any:
    if code == _EXT_UUID:
        if len(data) != 16:
            raise MessageValidationError(f"a UUID needs 16 bytes, got {len(data)}")
        return UUID(bytes=data)
    if code == _EXT_NDARRAY:
        return _decode_array(data)
    if code == _EXT_MESSAGE:
        return decode_message(data)
    raise MessageValidationError(f"unknown extension type code {code}")


def _resolve(value: Any) -> Any:
    """``value`` with every extension in it (at any depth of lists and dicts) decoded."""
    cls = type(value)
    if cls is _Ext:
        return _decode_ext(value.code, value.data)
    if cls is list:
        return [_resolve(v) for v in value] if any(_holds_ext(v) for v in value) else value
    if cls is dict:
        return {k: _resolve(v) for k, v in value.items()}
    return value


def _holds_ext(value: Any) -> bool:
    cls = type(value)
    return cls is _Ext or cls is list or cls is dict


def _decode_array(data: bytes) -> npt.NDArray[Any]:
    try:
        parts = msgpack.unpackb(data, raw=False)
    except Exception as exc:  # msgpack raises many types for malformed input
        raise MessageValidationError(f"malformed array: {exc}") from exc
    if not (isinstance(parts, list) and len(parts) == 2 and isinstance(parts[1], bytes)):
        raise MessageValidationError("malformed array: expected [header, body]")
    header, body = parts
    if not (isinstance(header, list) and len(header) == 2 and isinstance(header[0], str)):
        raise MessageValidationError("malformed array header")
    dtype_str, shape = header
    try:
        dtype = np.dtype(dtype_str)
    except (TypeError, ValueError, SyntaxError) as exc:  # "," reaches numpy's parser
        raise MessageValidationError(f"malformed array dtype {dtype_str!r}") from exc
    if dtype.kind not in _ARRAY_KINDS:
        raise MessageValidationError(f"arrays of dtype {dtype} are not accepted")
    if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
        raise MessageValidationError(f"malformed array shape {shape!r}")
    expected = math.prod(shape) * dtype.itemsize
    if len(body) != expected:
        raise MessageValidationError(
            f"array of shape {tuple(shape)} and dtype {dtype} needs {expected} bytes, "
            f"got {len(body)}"
        )
    return np.frombuffer(body, dtype=dtype).reshape(shape).copy()


def decode_message(data: bytes) -> RingKernelMessage:
    """Decode wire bytes into a message of its registered type.

    Raises :class:`MessageValidationError` for anything that is not a well-formed
    encoding of a registered message type, naming the field where one is at fault;
    never another exception type.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MessageValidationError(f"wire data must be bytes, got {type(data).__qualname__}")
    try:
        envelope = msgpack.unpackb(data, ext_hook=_Ext, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises many types for malformed input
        raise MessageValidationError(f"malformed wire bytes: {exc}") from exc
    if not (isinstance(envelope, dict) and set(envelope) == {"t", "f"}):
        raise MessageValidationError("malformed wire bytes: not a message envelope")
    wire_name, fields = envelope["t"], envelope["f"]
    if not isinstance(wire_name, str) or not isinstance(fields, dict):
        raise MessageValidationError("malformed wire bytes: bad envelope fields")
    cls = message_type_named(wire_name)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(str(k) for k in fields if k not in known)
    if unknown:
        raise MessageValidationError(
            f"{cls.__qualname__} has no field(s) {', '.join(unknown)} (wire bytes from "
            "another version of the message type?)"
        )
    for name, value in fields.items():
        if _holds_ext(value):
            try:
                fields[name] = _resolve(value)
            except MessageValidationError as exc:
                raise MessageValidationError(f"{cls.__qualname__}.{name}: {exc}") from exc
    try:
        return cls(**fields)
    except MessageValidationError:
        raise
    except (TypeError, ValueError) as exc:
        raise MessageValidationError(f"cannot build {cls.__qualname__}: {exc}") from exc


def wire_round_trip(msg: _M, *, to_numpy: ToNumpy | None = None) -> _M:
    """``msg`` encoded and decoded again: what a receiver in another process would get
    (device arrays come back as numpy, see :func:`encode_message`).

    Raises:
        MessageValidationError: ``msg`` has no wire form, naming the field.
    """
    return decode_message(encode_message(msg, to_numpy=to_numpy))  # type: ignore[return-value]
