"""The runtime's option enums read what users write the same way: a member, or its value
or name in any case; anything else is refused with the choices listed."""

from __future__ import annotations

import enum
import re
from typing import Any

import pytest
from pydotcompute import BackpressureStrategy, RouteMode


@pytest.mark.parametrize(
    ("cls", "written", "member"),
    [
        (BackpressureStrategy, "drop_oldest", BackpressureStrategy.DROP_OLDEST),
        (BackpressureStrategy, "BLOCK", BackpressureStrategy.BLOCK),
        (BackpressureStrategy, BackpressureStrategy.REJECT, BackpressureStrategy.REJECT),
        (RouteMode, "broadcast", RouteMode.BROADCAST),
        (RouteMode, "Round_Robin", RouteMode.ROUND_ROBIN),
        (RouteMode, RouteMode.BROADCAST, RouteMode.BROADCAST),
    ],
)
def test_members_values_and_names_parse(cls: Any, written: Any, member: enum.Enum) -> None:
    assert cls.parse(written) is member


@pytest.mark.parametrize(
    ("cls", "written", "message"),
    [
        (
            BackpressureStrategy,
            "spill",
            "unknown backpressure strategy 'spill'; choose one of block, reject, drop_oldest",
        ),
        (BackpressureStrategy, 3, "unknown backpressure strategy 3; choose one of"),
        (RouteMode, "random", "unknown route mode 'random'; choose one of round_robin, broadcast"),
        (RouteMode, BackpressureStrategy.BLOCK, "unknown route mode <BackpressureStrategy.BLOCK"),
    ],
)
def test_anything_else_is_refused_with_the_choices(cls: Any, written: Any, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        cls.parse(written)
