"""Messages: the ``@message`` decorator and the :class:`RingKernelMessage` base.

Every message carries four standard fields: ``message_id`` (a fresh uuid4),
``priority`` (0..255, default 128; higher is served first by priority queues),
``correlation_id`` (the id of the message this one answers, or ``None``) and
``deadline`` (a ``time.time()`` after which a queued message is not processed but
dead-lettered as expired, or ``None``).
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from typing import Any, TypeVar, overload
from uuid import UUID

from ..errors import ArgumentTypeError, MessageTypeError, MessageValidationError
from ._ids import new_message_id

__all__ = ["RingKernelMessage", "message", "message_type_named"]

DEFAULT_PRIORITY = 128
MAX_PRIORITY = 255

_M = TypeVar("_M", bound="RingKernelMessage")
_T = TypeVar("_T")

# Wire name -> message class, for decoding. A later definition under the same name
# (a re-run notebook cell, a reloaded module) replaces the earlier one.
_MESSAGE_TYPES: dict[str, type[RingKernelMessage]] = {}


class RingKernelMessage:
    """Base of every ``@message`` class; use it in ``isinstance`` checks and hints.

    Do not subclass it directly: decorate a class with :func:`message`, which makes it a
    dataclass with the standard fields and mixes this class in.
    """

    __slots__ = ()
    __wire_name__: str = ""

    message_id: UUID
    priority: int
    correlation_id: UUID | None
    deadline: float | None

    def reply(self, response_type: type[_M], /, **fields: Any) -> _M:
        """Build a ``response_type`` message whose ``correlation_id`` is this message's id."""
        fields.setdefault("correlation_id", self.message_id)
        return response_type(**fields)

    def to_bytes(self) -> bytes:
        """Encode this message in the msgpack wire form (see :func:`encode_message`)."""
        from ._wire import encode_message

        return encode_message(self)

    @classmethod
    def from_bytes(cls: type[_M], data: bytes) -> _M:
        """Decode wire bytes; raises :class:`MessageValidationError` on malformed bytes and
        :class:`MessageTypeError` when they hold another message type."""
        from ._wire import decode_message

        decoded = decode_message(data)
        if not isinstance(decoded, cls):
            raise MessageTypeError(
                f"{cls.__qualname__}.from_bytes: the bytes hold a "
                f"{type(decoded).__qualname__}, not a {cls.__qualname__}"
            )
        return decoded


def _validate_standard_fields(msg: RingKernelMessage) -> None:
    name = type(msg).__qualname__
    priority = msg.priority
    if type(priority) is not int:  # bool is an int subclass: a True priority is a bug
        raise MessageValidationError(
            f"{name}.priority must be an int in 0..{MAX_PRIORITY}, got {priority!r}"
        )
    if not 0 <= priority <= MAX_PRIORITY:
        raise MessageValidationError(
            f"{name}.priority must be in 0..{MAX_PRIORITY}, got {priority}"
        )
    if not isinstance(msg.message_id, UUID):
        raise MessageValidationError(f"{name}.message_id must be a UUID, got {msg.message_id!r}")
    if msg.correlation_id is not None and not isinstance(msg.correlation_id, UUID):
        raise MessageValidationError(
            f"{name}.correlation_id must be a UUID or None, got {msg.correlation_id!r}"
        )
    deadline = msg.deadline
    if deadline is not None and not (type(deadline) in (int, float) and math.isfinite(deadline)):
        raise MessageValidationError(
            f"{name}.deadline must be None or a finite time.time() value, got {deadline!r}"
        )


class _AutoId:
    """The ``message_id`` default: a fresh id, drawn the first time it is read."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<new uuid4>"


_AUTO_ID: Any = _AutoId()


class _LazyMessageId:
    """``message_id`` of a message built without one: drawn on first read, then kept.

    Most messages are built, queued, computed on and dropped without anyone reading
    their id, and drawing one is half the cost of building a message. A non-data
    descriptor: once the id is in the instance ``__dict__`` (given, or drawn here),
    reads and writes go straight to it, at plain attribute speed.
    """

    __slots__ = ()

    def __get__(self, msg: Any, owner: type[Any] | None = None) -> Any:
        if msg is None:
            return self
        # setdefault: two threads reading a new id at once agree on one.
        return msg.__dict__.setdefault("message_id", new_message_id())


_LAZY_MESSAGE_ID = _LazyMessageId()


def _getstate_with_id(self: Any) -> Any:
    self.message_id  # noqa: B018 - a copy or a pickle keeps the id the original has
    return object.__getstate__(self)


_STANDARD_FIELDS: tuple[tuple[str, Any, Any], ...] = (
    ("message_id", UUID, dataclasses.field(default=_AUTO_ID)),
    ("priority", int, dataclasses.field(default=DEFAULT_PRIORITY)),
    ("correlation_id", "UUID | None", dataclasses.field(default=None)),
    ("deadline", "float | None", dataclasses.field(default=None)),
)


@overload
def message(cls: type[_T], /) -> type[_T]: ...
@overload
def message(*, name: str | None = None) -> Any: ...


def message(cls: type[Any] | None = None, /, *, name: str | None = None) -> Any:
    """Make ``cls`` a message type: a dataclass with the standard fields, registered
    for the wire form under ``name`` (default ``module.QualName``).

    Works on a plain class or a dataclass, with or without the standard fields
    declared. Returns a new dataclass that subclasses ``cls`` and
    :class:`RingKernelMessage`; construction validates the standard fields and raises
    :class:`MessageValidationError` naming the class and field.
    """

    def decorate(target: type[Any]) -> type[Any]:
        return _make_message_type(target, name)

    return decorate if cls is None else decorate(cls)


def _make_message_type(cls: type[Any], wire_name: str | None) -> type[RingKernelMessage]:
    if not isinstance(cls, type):
        raise ArgumentTypeError(f"@message decorates a class, got {cls!r}")
    base = cls if dataclasses.is_dataclass(cls) else dataclasses.dataclass(cls)
    declared = {f.name: f for f in dataclasses.fields(base)}
    missing = [spec for spec in _STANDARD_FIELDS if spec[0] not in declared]
    declared_id = declared.get("message_id")
    if declared_id is not None and declared_id.default_factory in (uuid.uuid4, new_message_id):
        # The same kind of id (random version 4), made faster and lazily: see _ids.
        missing.insert(0, _STANDARD_FIELDS[0])
    lazy_id = bool(missing) and missing[0] is _STANDARD_FIELDS[0]
    params = getattr(base, "__dataclass_params__")  # noqa: B009 - not in the type stubs

    user_post_init = getattr(base, "__post_init__", None)

    def __post_init_lazy_id__(self: RingKernelMessage) -> None:
        # __post_init__ below for the usual class (a lazy id, no __post_init__ of its
        # own), in fewer steps: it runs for every message built.
        fields = self.__dict__
        given_id = fields["message_id"]
        if given_id is _AUTO_ID:
            del fields["message_id"]  # drawn on first read: see _LazyMessageId
        elif type(given_id) is not UUID:
            _validate_standard_fields(self)
        priority, correlation_id = self.priority, self.correlation_id
        if not (
            type(priority) is int
            and 0 <= priority <= MAX_PRIORITY
            and (correlation_id is None or type(correlation_id) is UUID)
            and self.deadline is None
        ):
            _validate_standard_fields(self)

    def __post_init__(self: RingKernelMessage, *args: Any) -> None:
        if lazy_id and self.__dict__["message_id"] is _AUTO_ID:
            del self.__dict__["message_id"]  # drawn on first read: see _LazyMessageId
        if user_post_init is not None:
            user_post_init(self, *args)
        if lazy_id:
            given_id = self.__dict__.get("message_id", _AUTO_ID)
            id_ok = given_id is _AUTO_ID or type(given_id) is UUID
        else:
            id_ok = type(self.message_id) is UUID
        # The common, valid case in one expression; the helper names what is wrong.
        priority, correlation_id = self.priority, self.correlation_id
        if not (
            type(priority) is int
            and 0 <= priority <= MAX_PRIORITY
            and id_ok
            and (correlation_id is None or type(correlation_id) is UUID)
            and self.deadline is None
        ):
            _validate_standard_fields(self)

    own_post_init = __post_init_lazy_id__ if lazy_id and user_post_init is None else __post_init__
    own_post_init.__user_post_init__ = user_post_init  # type: ignore[attr-defined]
    made: type[RingKernelMessage] = dataclasses.make_dataclass(
        cls.__name__,
        missing,
        bases=(base, RingKernelMessage),
        namespace={
            "__post_init__": own_post_init,
            "__doc__": cls.__doc__,
        },
        frozen=params.frozen,
        eq=params.eq,
        order=params.order,
    )
    if lazy_id:
        made.message_id = _LAZY_MESSAGE_ID  # type: ignore[assignment]
        if getattr(base, "__getstate__", None) is object.__getstate__:
            made.__getstate__ = _getstate_with_id  # type: ignore[method-assign]
    made.__module__ = cls.__module__
    made.__qualname__ = cls.__qualname__
    made.__wire_name__ = wire_name or f"{cls.__module__}.{cls.__qualname__}"
    _MESSAGE_TYPES[made.__wire_name__] = made
    return made


def user_post_init_of(cls: type[Any]) -> Any:
    """The ``__post_init__`` that ``cls`` runs besides the standard fields' checks
    (its own, or one a subclass added), or ``None``."""
    post_init = getattr(cls, "__post_init__", None)
    return getattr(post_init, "__user_post_init__", post_init)


def is_lazy_id_default(field: dataclasses.Field[Any]) -> bool:
    """Whether ``field`` is a ``message_id`` drawn on first read (see :class:`_LazyMessageId`)."""
    return field.default is _AUTO_ID


def message_type_named(wire_name: str) -> type[RingKernelMessage]:
    """The message class registered under ``wire_name``; raises
    :class:`MessageValidationError` listing nothing secret, just the unknown name."""
    try:
        return _MESSAGE_TYPES[wire_name]
    except KeyError:
        raise MessageValidationError(
            f"unknown message type {wire_name!r}: no @message class is registered under "
            "that name in this process (import the module that defines it)"
        ) from None
