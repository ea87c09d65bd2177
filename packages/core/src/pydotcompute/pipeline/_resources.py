"""What a plan asks of the machine, against what the machine has.

A plan can be valid and still far beyond the machine: ``workers = 100000`` validates,
then spends half a minute and gigabytes starting kernels for ten records. These checks
turn that into a :class:`~pydotcompute.errors.PipelineResourceWarning` at validation,
naming the stage and the setting. They warn only far past the machine's size, so a
pipeline sized for a bigger machine still validates here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from ..errors import PipelineResourceWarning

if TYPE_CHECKING:
    from ._plan import PlannedStage

__all__ = ["resource_warnings", "workers_limit"]

#: Workers per CPU core past which a stage's ``workers`` is "far beyond" the machine
#: (and never fewer than WORKERS_FLOOR): the workers share one event loop, so past a
#: few per core they add start-up time and memory, not throughput.
WORKERS_PER_CORE: Final = 16
WORKERS_FLOOR: Final = 64
#: Memory each worker kernel holds before any message (its task, queue, context and
#: telemetry): measured with tracemalloc as the peak of a 10-record run of the guide
#: pipeline with 501 compute workers less that with 1, divided by 500 (21.2 kB).
KERNEL_BYTES: Final = 21_000
#: Memory the smallest message takes while queued: a one-value per-message record
#: (tracemalloc over ``records_from_array`` of 1000 such records: 415 bytes each).
#: A full queue holds at least this much per slot.
MESSAGE_BYTES: Final = 400


def workers_limit(cores: int | None = None) -> int:
    """Workers per stage past which validation warns, for ``cores`` (default: this
    machine's; an unknown count counts as one)."""
    count = cores if cores is not None else (os.cpu_count() or 1)
    return max(WORKERS_FLOOR, WORKERS_PER_CORE * count)


def physical_memory() -> int | None:
    """This machine's RAM in bytes, where the platform says (POSIX sysconf); else None."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None  # not POSIX, or the name is unknown here: no memory check


def resource_warnings(
    stages: Sequence[PlannedStage],
    *,
    source: str | None = None,
    cores: int | None = None,
    memory: int | None = None,
) -> tuple[PipelineResourceWarning, ...]:
    """A warning per stage setting far beyond the machine: ``workers`` past
    :func:`workers_limit`, and ``queue_size`` whose full queues (at least
    :data:`MESSAGE_BYTES` a slot, plus :data:`KERNEL_BYTES` a worker) would take more
    than half the RAM. ``cores`` and ``memory`` default to this machine's."""
    limit = workers_limit(cores)
    ram = memory if memory is not None else physical_memory()
    found: list[PipelineResourceWarning] = []
    for stage in stages:
        if stage.workers > limit:
            found.append(
                PipelineResourceWarning(
                    f"{stage.workers} workers is far beyond this machine's "
                    f"{os.cpu_count() if cores is None else cores} CPU cores (warned past "
                    f"{limit}): each worker is a kernel with its own queue, so they cost "
                    "start-up time and memory but share one event loop; use a few per core",
                    stage=stage.name,
                    key="workers",
                    source=source,
                )
            )
        needed = stage.workers * (KERNEL_BYTES + stage.queue_size * MESSAGE_BYTES)
        if ram is not None and needed > ram // 2:
            found.append(
                PipelineResourceWarning(
                    f"{stage.workers} workers x queue_size {stage.queue_size} can hold "
                    f"{stage.workers * stage.queue_size} messages, at least "
                    f"{_gib(needed)} when full, against {_gib(ram)} of RAM; "
                    "lower workers or queue_size",
                    stage=stage.name,
                    key="queue_size",
                    source=source,
                )
            )
    return tuple(found)


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB"
