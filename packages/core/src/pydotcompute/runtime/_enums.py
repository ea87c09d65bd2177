"""Reading an enum member from what a user wrote: the one parser behind every
``parse`` classmethod of the runtime's option enums (backpressure, route mode)."""

from __future__ import annotations

import enum
from typing import Any, TypeVar

from ..errors import InvalidArgumentError

__all__ = ["parse_enum"]

_E = TypeVar("_E", bound=enum.Enum)


def parse_enum(cls: type[_E], value: Any, what: str) -> _E:
    """The member of ``cls`` that ``value`` names: a member itself, or its value or name
    as a string in any case (``"drop_oldest"``, ``"DROP_OLDEST"``).

    Raises:
        ValueError: ``value`` names no member; the message calls it ``what`` and lists
            the members' values.
    """
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        wanted = value.lower()
        for member in cls:
            if wanted in (str(member.value).lower(), member.name.lower()):
                return member
    choices = ", ".join(str(m.value) for m in cls)
    raise InvalidArgumentError(f"unknown {what} {value!r}; choose one of {choices}")
