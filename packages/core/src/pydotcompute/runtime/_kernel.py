"""Kernel definitions: the ``@ring_kernel`` decorator, its settings, and the states a
launched kernel goes through."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ArgumentTypeError, InvalidArgumentError, KernelNotFoundError
from ._queue import BackpressureStrategy, Ordering
from ._supervision import RestartPolicy

if TYPE_CHECKING:
    from ._context import KernelContext

__all__ = ["KernelSpec", "KernelState", "registered_kernel", "ring_kernel"]

logger = logging.getLogger("pydotcompute")

KernelFunction = Callable[["KernelContext"], Awaitable[Any]]
_F = TypeVar("_F", bound=Callable[..., Any])

DEFAULT_QUEUE_SIZE = 1024


class KernelState(enum.Enum):
    """Lifecycle of a launched kernel.

    LAUNCHED -> ACTIVE <-> DEACTIVATED; any live state -> TERMINATING -> TERMINATED.
    A kernel whose function raises is RESTARTING (then back to the state it was in)
    while its restart policy allows, FAILED after that.
    """

    LAUNCHED = "launched"  #: its task runs, but it takes no messages yet
    ACTIVE = "active"  #: it takes and processes messages
    DEACTIVATED = "deactivated"  #: paused: messages queue up, none are handed out
    TERMINATING = "terminating"  #: asked to stop; finishing
    TERMINATED = "terminated"  #: stopped; its queues accept nothing
    RESTARTING = "restarting"  #: it failed and waits out its backoff; messages keep queueing
    FAILED = "failed"  #: its function raised (past its restart policy); see the log

    @property
    def is_live(self) -> bool:
        return self in (
            KernelState.LAUNCHED,
            KernelState.ACTIVE,
            KernelState.DEACTIVATED,
            KernelState.RESTARTING,
        )


@dataclasses.dataclass(frozen=True)
class KernelSpec:
    """Everything needed to launch a kernel: its function and its settings."""

    kernel_id: str
    func: KernelFunction
    input_queue_size: int = DEFAULT_QUEUE_SIZE
    output_queue_size: int = DEFAULT_QUEUE_SIZE
    backpressure: BackpressureStrategy = BackpressureStrategy.BLOCK
    input_type: type | None = None
    output_type: type | None = None
    ordering: Ordering = "fifo"
    restart: RestartPolicy = RestartPolicy()  # noqa: RUF009 - frozen, so sharing it is safe
    stall_timeout: float | None = None

    def __post_init__(self) -> None:
        where = f"kernel {self.kernel_id!r}"
        if not isinstance(self.kernel_id, str) or not self.kernel_id:
            raise InvalidArgumentError(f"kernel_id must be a non-empty str, got {self.kernel_id!r}")
        if not inspect.iscoroutinefunction(self.func):
            raise ArgumentTypeError(
                f"{where}: the kernel function must be an async def, got {self.func!r}"
            )
        for name in ("input_queue_size", "output_queue_size"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise InvalidArgumentError(f"{where}: {name} must be a positive int, got {value!r}")
        object.__setattr__(self, "backpressure", BackpressureStrategy.parse(self.backpressure))
        if self.ordering not in ("fifo", "priority"):
            raise InvalidArgumentError(
                f"{where}: ordering must be 'fifo' or 'priority', got {self.ordering!r}"
            )
        if not isinstance(self.restart, RestartPolicy):
            raise ArgumentTypeError(
                f"{where}: restart must be a RestartPolicy, got {self.restart!r}"
            )
        stall = self.stall_timeout
        if stall is not None and not (isinstance(stall, (int, float)) and stall > 0):
            raise InvalidArgumentError(
                f"{where}: stall_timeout must be a positive number, got {stall!r}"
            )
        for name in ("input_type", "output_type"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, type):
                raise ArgumentTypeError(f"{where}: {name} must be a class, got {value!r}")

    def with_settings(self, **settings: Any) -> KernelSpec:
        """A copy with some settings changed; ``queue_size`` sets both queue sizes.
        Unknown names raise TypeError naming them."""
        settings = _expand_queue_size(settings, where=f"kernel {self.kernel_id!r}")
        return dataclasses.replace(self, **settings)


_SETTINGS = frozenset(
    f.name for f in dataclasses.fields(KernelSpec) if f.name not in ("kernel_id", "func")
)


def _expand_queue_size(settings: dict[str, Any], where: str) -> dict[str, Any]:
    settings = dict(settings)
    queue_size = settings.pop("queue_size", None)
    if queue_size is not None:
        settings.setdefault("input_queue_size", queue_size)
        settings.setdefault("output_queue_size", queue_size)
    unknown = sorted(set(settings) - _SETTINGS)
    if unknown:
        raise ArgumentTypeError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; known: queue_size, "
            + ", ".join(sorted(_SETTINGS))
        )
    return {k: v for k, v in settings.items() if v is not None}


# Kernel id -> spec for every @ring_kernel in this process; runtime.launch(id) looks here.
# Redefining an id (a re-run notebook cell, a reloaded module) replaces the old spec.
_REGISTRY: dict[str, KernelSpec] = {}

SPEC_ATTRIBUTE = "__ring_kernel__"


def ring_kernel(
    kernel_id: str | None = None,
    *,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    input_queue_size: int | None = None,
    output_queue_size: int | None = None,
    backpressure: BackpressureStrategy | str = BackpressureStrategy.BLOCK,
    input_type: type | None = None,
    output_type: type | None = None,
    ordering: Ordering = "fifo",
    restart: RestartPolicy | None = None,
    stall_timeout: float | None = None,
) -> Callable[[_F], _F]:
    """Register an ``async def kernel(ctx)`` under ``kernel_id`` (default: its name).

    ``queue_size`` sizes both queues unless ``input_queue_size``/``output_queue_size``
    say otherwise; ``backpressure`` applies to both. ``input_type`` makes sends of any
    other type fail at the sender with TypeError; ``output_type`` checks ``ctx.send``.
    ``ordering="priority"`` hands out higher ``priority`` first, FIFO within one.
    ``restart`` says whether a kernel that raises is restarted (default: never);
    ``stall_timeout`` lets the watchdog report it stalled when it holds messages and
    takes none for that many seconds.
    Returns the function unchanged, with its spec attached.
    """
    if callable(kernel_id):
        raise ArgumentTypeError(
            "use @ring_kernel() or @ring_kernel(kernel_id=...), with parentheses"
        )

    def decorate(func: _F) -> _F:
        spec = KernelSpec(
            kernel_id=kernel_id or func.__name__,
            func=func,
            input_queue_size=queue_size if input_queue_size is None else input_queue_size,
            output_queue_size=queue_size if output_queue_size is None else output_queue_size,
            backpressure=backpressure,  # type: ignore[arg-type]  # parsed in __post_init__
            input_type=input_type,
            output_type=output_type,
            ordering=ordering,
            restart=restart or RestartPolicy(),
            stall_timeout=stall_timeout,
        )
        if spec.kernel_id in _REGISTRY and _REGISTRY[spec.kernel_id].func is not func:
            logger.debug("ring kernel %r redefined", spec.kernel_id)
        _REGISTRY[spec.kernel_id] = spec
        setattr(func, SPEC_ATTRIBUTE, spec)
        return func

    return decorate


def registered_kernel(kernel_id: str) -> KernelSpec:
    """The spec registered under ``kernel_id``; KernelNotFoundError lists the known ids."""
    try:
        return _REGISTRY[kernel_id]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise KernelNotFoundError(
            f"no @ring_kernel is registered as {kernel_id!r} (registered: {known}); "
            "pass the function: runtime.launch(id, func)"
        ) from None


def spec_for(
    kernel_id: str, func: Callable[..., Any] | None, settings: dict[str, Any]
) -> KernelSpec:
    """The spec to launch ``kernel_id`` with: the registered one, or ``func``'s own
    decorator settings under the new id, or defaults for an undecorated function;
    then ``settings`` applied on top."""
    if func is None:
        spec = registered_kernel(kernel_id)
    else:
        own: KernelSpec | None = getattr(func, SPEC_ATTRIBUTE, None)
        spec = (
            dataclasses.replace(own, kernel_id=kernel_id)
            if own is not None
            else KernelSpec(kernel_id=kernel_id, func=func)
        )
    return spec.with_settings(**settings) if settings else spec
