"""The per-message outputs of the built-in stages, shaped like the guide's own types."""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import UUID, uuid4

from pydotcompute import message

__all__ = ["ComputeResult", "PreprocessedData"]


@message(name="pydotcompute_stages.PreprocessedData")
@dataclasses.dataclass
class PreprocessedData:
    """One normalized record (the guide's ``PreprocessedData``), from ``preprocess``.

    ``normalized`` is a 1-D numpy array of the input's float dtype (float64 for lists of
    numbers); ``key`` is the input record's key; ``correlation_id`` is the input's root id.
    """

    normalized: Any
    key: int | None = None
    message_id: UUID = dataclasses.field(default_factory=uuid4)
    priority: int = 128
    correlation_id: UUID | None = None


@message(name="pydotcompute_stages.ComputeResult")
@dataclasses.dataclass
class ComputeResult:
    """Statistics of one record (the guide's ``ComputeResult``), from ``compute``.

    ``result`` is the first statistic asked for (the mean by default, as in the guide);
    ``stats`` maps every statistic asked for to its value (floats, NaN where the
    record's values made it undefined). ``correlation_id`` is the input's root id.
    """

    result: float
    stats: dict[str, float] = dataclasses.field(default_factory=dict)
    key: int | None = None
    message_id: UUID = dataclasses.field(default_factory=uuid4)
    priority: int = 128
    correlation_id: UUID | None = None
