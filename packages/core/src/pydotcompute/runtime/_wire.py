"""The msgpack wire form of messages: compact, typed, never pickle.

Layout: a msgpack map ``{"t": wire name, "f": {field: value}}``. Field values may be
None, bool, int, float, str, bytes, lists (tuples become lists), dicts with str or int
keys, UUIDs, numpy arrays of bool/int/uint/float/complex dtype, numpy scalars (sent as
Python numbers) and nested messages. Anything else is refused at encode time, naming
the field; any malformed input is refused at decode time with
:class:`MessageValidationError`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any
from uuid import UUID

import msgpack
import numpy as np

from ..errors import MessageValidationError
from ._message import RingKernelMessage, message_type_named

__all__ = ["decode_message", "encode_message"]

_EXT_UUID = 1
_EXT_NDARRAY = 2
_EXT_MESSAGE = 3
# numpy kinds that round-trip as raw bytes: bool, int, uint, float, complex.
_ARRAY_KINDS = frozenset("biufc")


def _encode_ext(value: Any) -> msgpack.ExtType:
    if isinstance(value, UUID):
        return msgpack.ExtType(_EXT_UUID, value.bytes)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(f"numpy arrays of dtype {value.dtype} have no wire form")
        header = [value.dtype.str, list(value.shape)]
        body = np.ascontiguousarray(value).tobytes()
        return msgpack.ExtType(_EXT_NDARRAY, msgpack.packb([header, body]))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, RingKernelMessage):
        return msgpack.ExtType(_EXT_MESSAGE, encode_message(value))
    raise TypeError(f"values of type {type(value).__qualname__} have no wire form")


def encode_message(msg: RingKernelMessage) -> bytes:
    """Encode ``msg``; raises :class:`MessageValidationError` naming the field whose
    value has no wire form."""
    fields = {f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)}  # type: ignore[arg-type]
    try:
        return msgpack.packb(  # type: ignore[no-any-return]
            {"t": type(msg).__wire_name__, "f": fields}, default=_encode_ext, use_bin_type=True
        )
    except (TypeError, ValueError, OverflowError) as exc:
        culprit = _find_unencodable_field(fields)
        raise MessageValidationError(
            f"{type(msg).__qualname__}.{culprit} cannot be sent on the wire: {exc}"
        ) from exc


def _find_unencodable_field(fields: dict[str, Any]) -> str:
    for name, value in fields.items():
        try:
            msgpack.packb(value, default=_encode_ext, use_bin_type=True)
        except (TypeError, ValueError, OverflowError):
            return name
    return "<unknown field>"


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


def _decode_array(data: bytes) -> np.ndarray[Any, Any]:
    parts = msgpack.unpackb(data, raw=False)
    if not (isinstance(parts, list) and len(parts) == 2 and isinstance(parts[1], bytes)):
        raise MessageValidationError("malformed array: expected [header, body]")
    header, body = parts
    if not (isinstance(header, list) and len(header) == 2 and isinstance(header[0], str)):
        raise MessageValidationError("malformed array header")
    dtype_str, shape = header
    try:
        dtype = np.dtype(dtype_str)
    except TypeError as exc:
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
    encoding of a registered message type; never another exception type.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MessageValidationError(f"wire data must be bytes, got {type(data).__qualname__}")
    try:
        envelope = msgpack.unpackb(data, ext_hook=_decode_ext, raw=False, strict_map_key=False)
    except MessageValidationError:
        raise
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
    try:
        return cls(**fields)
    except MessageValidationError:
        raise
    except TypeError as exc:
        raise MessageValidationError(f"cannot build {cls.__qualname__}: {exc}") from exc
