"""Choosing the engine a plan runs on: this process's runtime, or a Ray cluster."""

from __future__ import annotations

from typing import TypeAlias

from ..errors import InvalidArgumentError
from ..runtime import RingKernelRuntime
from ._plan import ENGINES, PipelinePlan
from ._ray import RayPipelineRun, import_ray
from ._run import PipelineRun

__all__ = ["AnyRun", "open_run"]

#: A run on either engine: both have the same interface.
AnyRun: TypeAlias = PipelineRun | RayPipelineRun


def open_run(
    plan: PipelinePlan,
    *,
    engine: str | None = None,
    address: str | None = None,
    runtime: RingKernelRuntime | None = None,
    prefix: str = "",
    relax_gc: bool = False,
    wire_check: bool = False,
) -> AnyRun:
    """A run of ``plan`` on ``engine`` (None: the plan's own, ``plan.engine``).

    ``address`` (engine ray): the cluster to join (None: the plan's own, and without
    one a local Ray starts and stops with the run).
    ``runtime``, ``prefix`` and ``wire_check`` are the local engine's.

    Raises:
        InvalidArgumentError: an unknown engine, or a local-engine option with ray.
        RayUnavailableError: engine ray without Ray installed (names the extra).
    """
    if address is not None and not isinstance(address, str):
        raise InvalidArgumentError(f"address must be a string, got {address!r}")
    chosen = plan.engine if engine is None else engine
    address = plan.address if address is None else address
    if chosen not in ENGINES:
        raise InvalidArgumentError(f"engine must be one of {', '.join(ENGINES)}, got {chosen!r}")
    if chosen == "local":
        if address is not None:
            raise InvalidArgumentError(
                f"address {address!r} is for engine 'ray'; this run's engine is 'local'"
            )
        return PipelineRun(plan, runtime, prefix=prefix, relax_gc=relax_gc, wire_check=wire_check)
    if runtime is not None or prefix or wire_check:
        raise InvalidArgumentError(
            "runtime, prefix and wire_check are the local engine's; engine 'ray' runs every "
            "worker in an actor of its own"
        )
    import_ray()  # now, not at start: a missing extra is said before anything runs
    return RayPipelineRun(plan, address=address, relax_gc=relax_gc)
