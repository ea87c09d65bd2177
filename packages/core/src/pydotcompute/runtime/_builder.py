"""Unchecked builders: a message type built from a few fields, for library hot paths.

Building a message through its ``__init__`` validates the standard fields, which is
most of the cost of a small message. Code that builds one message per record from
values it has just made itself (ids it drew, default priorities) uses a builder
instead: the same instance, its other fields at their defaults, about three times
faster. Never for values that came from a user: those go through the class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ..errors import ArgumentTypeError
from ._message import RingKernelMessage, is_lazy_id_default, user_post_init_of

__all__ = ["unchecked_builder"]


def unchecked_builder(cls: type[Any], *fields: str) -> Callable[..., Any]:
    """A function taking ``fields`` positionally that returns a ``cls`` with them set and
    every other field at its default (a lazy ``message_id`` stays lazy), with no checks.

    Raises:
        ArgumentTypeError: ``cls`` is not a ``@message`` class, has a ``__post_init__``
            of its own (which a builder would skip), a name is not one of its fields,
            or a field without a default is left out.
    """
    if not (isinstance(cls, type) and issubclass(cls, RingKernelMessage)):
        raise ArgumentTypeError(f"unchecked_builder takes a @message class, got {cls!r}")
    if user_post_init_of(cls) is not None:
        raise ArgumentTypeError(
            f"{cls.__qualname__} has a __post_init__ of its own: build it through the class"
        )
    message_type: Any = cls  # a dataclass: @message made it one
    declared = {f.name: f for f in dataclasses.fields(message_type) if f.init}
    unknown = [name for name in fields if name not in declared]
    if unknown:
        raise ArgumentTypeError(
            f"{cls.__qualname__}: unchecked_builder fields {fields!r} must be fields of it; "
            f"{unknown!r} are not"
        )
    if len(set(fields)) != len(fields):
        raise ArgumentTypeError(
            f"{cls.__qualname__}: unchecked_builder fields {fields!r} must be distinct"
        )
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    frozen = getattr(cls, "__dataclass_params__").frozen  # noqa: B009 - not in the stubs
    if frozen:
        namespace["_set"] = object.__setattr__
    lines = ["  self = _new(_cls)"]
    for name, field in declared.items():
        if name in fields:
            value = name
        elif is_lazy_id_default(field):
            continue  # drawn on first read, as the class's own __init__ leaves it
        elif field.default is not dataclasses.MISSING:
            namespace[f"_default_{name}"] = field.default
            value = f"_default_{name}"
        elif field.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{name}"] = field.default_factory
            value = f"_factory_{name}()"
        else:
            raise ArgumentTypeError(
                f"{cls.__qualname__}.{name} has no default: unchecked_builder must be given it"
            )
        lines.append(f"  _set(self, {name!r}, {value})" if frozen else f"  self.{name} = {value}")
    source = f"def build({', '.join(fields)}):\n" + "\n".join(lines) + "\n  return self\n"
    exec(source, namespace)  # generated from field names only, as dataclasses does
    build: Callable[..., Any] = namespace["build"]
    build.__qualname__ = f"unchecked_builder.<{cls.__qualname__}>"
    return build
