"""The fusion rule: which stages of a plan run together in one worker.

Stage ``b`` joins the worker of stage ``a`` when ``a`` feeds only ``b`` and ``b`` is fed
only by ``a``, both map every record to one record (their definitions give a
``map_stage``), both leave ``fuse`` on, and nothing the queue between them would do
is lost: the same backend, worker count and restart policy, and ``b``'s queue blocks
(a ``reject`` or ``drop_oldest`` queue is a promise to shed load, kept by keeping it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..runtime import BackpressureStrategy
from ._settings import FUSE

if TYPE_CHECKING:
    from ._plan import PlannedStage

__all__ = ["fusable", "fused_groups"]


def fusable(a: PlannedStage, b: PlannedStage) -> bool:
    """Whether ``b`` may run in ``a``'s worker, right after it (see the module doc)."""
    return (
        a.outputs == (b.name,)
        and b.inputs == (a.name,)
        and a.definition.map_stage is not None
        and b.definition.map_stage is not None
        and a.setting(FUSE)
        and b.setting(FUSE)
        and a.backend is b.backend
        and a.workers == b.workers
        and a.restart == b.restart
        and b.backpressure is BackpressureStrategy.BLOCK
    )


def fused_groups(stages: Sequence[PlannedStage]) -> tuple[tuple[str, ...], ...]:
    """``stages`` (topological order) as groups that each run in one set of workers:
    the chains the rule fuses, every other stage alone; in topological order."""
    by_name = {stage.name: stage for stage in stages}
    group_of: dict[str, list[str]] = {}
    groups: list[list[str]] = []
    for stage in stages:
        upstream = by_name[stage.inputs[0]] if len(stage.inputs) == 1 else None
        if upstream is not None and fusable(upstream, stage):
            group = group_of[upstream.name]
            group.append(stage.name)
        else:
            group = [stage.name]
            groups.append(group)
        group_of[stage.name] = group
    return tuple(tuple(group) for group in groups)
