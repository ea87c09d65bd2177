"""The plugin entry point of pydotcompute-stages (``[project.entry-points.pydotcompute]``)."""

from __future__ import annotations

from collections.abc import Mapping

from pydotcompute.stage import hookimpl

from ._aggregator import AGGREGATOR
from ._compute import COMPUTE
from ._core import StageDefinition
from ._distributor import DISTRIBUTOR
from ._preprocess import PREPROCESS

__all__ = ["pydotcompute_register_stages"]


@hookimpl
def pydotcompute_register_stages() -> Mapping[str, StageDefinition]:
    """preprocess, compute, aggregator and distributor."""
    return {s.name: s for s in (PREPROCESS, COMPUTE, AGGREGATOR, DISTRIBUTOR)}
