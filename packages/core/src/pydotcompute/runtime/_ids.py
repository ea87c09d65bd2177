"""Fast random message ids.

``uuid.uuid4()`` reads the OS random source on every call (about 3-4 µs here, more than
the rest of building a message). Message ids need uniqueness, not secrecy, so we draw
128 bits from the ``random`` module's generator (seeded from the OS source, reseeded
after fork) and stamp the version-4 / RFC 4122 bits, as ``uuid4`` does: the result is an
ordinary version-4 ``UUID``, built in under 1 µs.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from uuid import UUID

__all__ = ["new_message_id", "uuids_from_ints"]

_CLEAR_VERSION_AND_VARIANT = ~((0xC000 << 48) | (0xF000 << 64))
_VERSION_4_RFC_4122 = (0x8000 << 48) | (4 << 76)
_SAFE_UNKNOWN = uuid.SafeUUID.unknown
# UUID's slot setters, called directly: UUID.__setattr__ refuses, and going through
# object.__setattr__ looks the slot up by name each time.
_SET_UUID_INT = vars(UUID)["int"].__set__
_SET_UUID_IS_SAFE = vars(UUID)["is_safe"].__set__


def new_message_id() -> UUID:
    """A random version-4 UUID."""
    value = random.getrandbits(128) & _CLEAR_VERSION_AND_VARIANT | _VERSION_4_RFC_4122
    # UUID's own __init__ re-validates what we already know to be valid; skip it.
    made: UUID = object.__new__(UUID)
    _SET_UUID_INT(made, value)
    _SET_UUID_IS_SAFE(made, _SAFE_UNKNOWN)
    return made


def uuids_from_ints(values: Iterable[int], high: int = 0) -> list[UUID]:
    """A UUID per integer of ``values``, its 128 bits ``high | value`` (each in
    ``[0, 2**128)``, which the caller guarantees: they are not checked), built as
    :func:`new_message_id` builds its one, four times faster than ``UUID(int=...)``: it
    is done once per record fed. ``high``: bits every id shares (an input's high half)."""
    new, safe = object.__new__, _SAFE_UNKNOWN
    set_int, set_safe = _SET_UUID_INT, _SET_UUID_IS_SAFE
    made: list[UUID] = []
    append = made.append
    for value in values:
        one = new(UUID)
        set_int(one, high | value)
        set_safe(one, safe)
        append(one)
    return made
