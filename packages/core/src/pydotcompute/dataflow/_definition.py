"""Stage definitions: what a plugin registers, and what a stage's factory is handed.

A plugin's ``pydotcompute_register_stages`` hook returns ``{name: StageDefinition}``.
A :class:`StageDefinition` declares the stage's parameters (:class:`Param`) and a
factory; a pipeline validates the parameters, then calls the factory once per worker
with a :class:`StageSetup` and launches the ``async def kernel(ctx)`` it returns.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from ..errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    ParameterValueError,
    UnknownParameterError,
)

if TYPE_CHECKING:
    from ..compute import ComputeBackend
    from ..runtime import KernelContext
    from ._loop import BatchStage
    from ._ports import StagePorts

__all__ = ["REQUIRED", "Param", "StageDefinition", "StageSetup"]

KernelFunction = Callable[["KernelContext"], Awaitable[Any]]


class _Required(enum.Enum):
    REQUIRED = "REQUIRED"

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Final = _Required.REQUIRED
"""The default of a :class:`Param` that has none: the pipeline must set it."""


@dataclasses.dataclass(frozen=True)
class Param:
    """One declared parameter of a stage.

    ``kind`` is the accepted type (or types); an ``int`` is accepted where ``float``
    is, a ``bool`` never counts as a number, and a list is accepted where ``tuple`` is
    (and handed to the stage as a tuple). ``items`` types the elements of a tuple
    parameter; ``choices`` restricts the value (or, for tuples, each element);
    ``minimum``/``maximum`` bound numbers (inclusive). ``nullable`` admits ``None``.
    ``validate``, if given, is called last with the normalized value and raises
    ``ValueError`` with its own complaint.
    """

    kind: type | tuple[type, ...]
    default: Any = REQUIRED
    doc: str = ""
    choices: tuple[Any, ...] | None = None
    items: type | None = None
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False
    validate: Callable[[Any], None] | None = None

    def check(self, value: Any) -> Any:
        """Return ``value`` normalized (lists become tuples, ints become floats where
        ``float`` is the kind), or raise ``ValueError`` saying what was expected."""
        if value is None:
            if self.nullable:
                return None
            raise InvalidArgumentError(f"expected {self.describe()}, got None")
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        value = _coerce(value, kinds)
        if value is _NO_MATCH:
            raise InvalidArgumentError(f"expected {self.describe()}")
        if isinstance(value, tuple):
            if self.items is not None:
                item_kinds = (self.items,)
                coerced = tuple(_coerce(v, item_kinds) for v in value)
                if any(v is _NO_MATCH for v in coerced):
                    raise InvalidArgumentError(f"expected {self.describe()}")
                value = coerced
            if self.choices is not None:
                bad = [v for v in value if v not in self.choices]
                if bad:
                    raise InvalidArgumentError(
                        f"{', '.join(map(repr, bad))} not among {_choices(self.choices)}"
                    )
        elif self.choices is not None and value not in self.choices:
            raise InvalidArgumentError(f"{value!r} is not among {_choices(self.choices)}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                raise InvalidArgumentError(f"{value!r} is below the minimum {self.minimum!r}")
            if self.maximum is not None and value > self.maximum:
                raise InvalidArgumentError(f"{value!r} is above the maximum {self.maximum!r}")
        if self.validate is not None:
            self.validate(value)
        return value

    def describe(self) -> str:
        """The expected type in words, e.g. ``"a list of str"`` or ``"an int >= 1"``."""
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        words = " or ".join(_type_word(k, self.items) for k in kinds)
        if self.minimum is not None:
            words += f" >= {self.minimum!r}"
        if self.maximum is not None:
            words += f" <= {self.maximum!r}"
        if self.nullable:
            words += " (or none)"
        return words


class _NoMatch:
    pass


_NO_MATCH: Final = _NoMatch()


def _coerce(value: Any, kinds: tuple[type, ...]) -> Any:
    for kind in kinds:
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind is tuple and isinstance(value, (list, tuple)):
            return tuple(value)
        if kind not in (int, float, tuple) and isinstance(value, kind):
            return value
    return _NO_MATCH


def _type_word(kind: type, items: type | None) -> str:
    names = {int: "an int", float: "a number", str: "a string", bool: "true or false"}
    if kind is tuple:
        return f"a list of {items.__name__}" if items is not None else "a list"
    return names.get(kind, f"a {kind.__name__}")


def _choices(choices: tuple[Any, ...]) -> str:
    return "{" + ", ".join(repr(c) for c in choices) + "}"


@dataclasses.dataclass(frozen=True)
class StageSetup:
    """Everything one worker of a stage is built from; handed to the stage's factory.

    ``stage`` is the pipeline's name for the stage and ``kernel_id`` this worker's
    kernel (``worker`` of ``workers``); ``params`` are validated, defaults filled in;
    ``batch_size`` is the most messages the worker takes per ``receive_batch``;
    ``ports`` is the wiring the stage loop sends along (see :mod:`._loop`);
    ``offload`` is the stage's ``offload`` setting and ``threads`` the most threads its
    row-wise work is cut into (its ``threads`` setting resolved; see
    :meth:`BatchStage.offload`).
    """

    stage: str
    kernel_id: str
    worker: int
    workers: int
    params: Mapping[str, Any]
    backend: ComputeBackend
    batch_size: int
    ports: StagePorts
    offload: str = "none"
    threads: int = 1


StageFactory = Callable[[StageSetup], KernelFunction]


@dataclasses.dataclass(frozen=True)
class StageDefinition:
    """A stage type, as a plugin registers it.

    ``factory(setup)`` returns the ``async def kernel(ctx)`` for one worker; it must
    honour the pipeline protocol, which :func:`pydotcompute.run_stage` implements for
    any :class:`pydotcompute.stage.BatchStage`. ``reads_rings`` declares that the
    kernel takes device batches out of device rings (``RingRows`` messages), as
    :func:`run_stage` does: set it for a ``BatchStage.factory``; a stage with a kernel of
    its own leaves it False and gets every message, device batches included, through its
    queue. ``params`` declares every parameter (others are refused); ``summary`` is one
    line for listings; ``accepts`` and ``emits`` say which message shapes the stage takes
    and sends. ``map_stage`` is the :class:`~pydotcompute.stage.BatchStage` class of a
    stage that maps every record to exactly one record (or StageError) with the same id
    and keeps no state between batches: given, the planner may run the stage in one
    worker with its one-to-one neighbours (stage fusion, see the ``fuse`` setting).
    ``holds_records`` says whether the stage may keep records between batches (a window,
    a join): None, the default, counts as True unless ``map_stage`` is given. Where a
    worker cannot be restarted with what it held (an actor lost on the Ray engine), a
    stage that may hold records fails the run instead of losing them silently.
    """

    name: str
    factory: StageFactory
    summary: str
    params: Mapping[str, Param] = dataclasses.field(default_factory=dict)
    accepts: str = "per-message records and RecordBatch"
    emits: str = ""
    reads_rings: bool = False
    map_stage: Callable[[StageSetup], BatchStage] | None = None
    holds_records: bool | None = None

    @property
    def may_hold_records(self) -> bool:
        """Whether a worker of this stage may keep records between batches (see
        ``holds_records``)."""
        if self.holds_records is not None:
            return self.holds_records
        return self.map_stage is None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidArgumentError(f"a stage name must be a non-empty str, got {self.name!r}")
        if not callable(self.factory):
            raise ArgumentTypeError(
                f"stage {self.name!r}: factory must be callable, got {self.factory!r}"
            )
        for key, param in self.params.items():
            if not isinstance(param, Param):
                raise ArgumentTypeError(f"stage {self.name!r}: parameter {key!r} must be a Param")
            if param.default is not REQUIRED:
                try:
                    param.check(param.default)
                except ValueError as exc:
                    raise InvalidArgumentError(
                        f"stage {self.name!r}: default of parameter {key!r} is invalid: {exc}"
                    ) from None
        object.__setattr__(self, "params", dict(self.params))

    def resolve_params(self, given: Mapping[str, Any], *, stage: str) -> dict[str, Any]:
        """Validate ``given`` against the declared parameters; return them all, with
        defaults filled in.

        Raises:
            UnknownParameterError: a parameter is not declared (lists the known ones).
            ParameterValueError: a value is of the wrong type or out of range, or a
                required parameter is missing.
        """
        unknown = [k for k in given if k not in self.params]
        if unknown:
            known = ", ".join(sorted(self.params)) or "none"
            raise UnknownParameterError(
                f"unknown parameter {unknown[0]!r} for a {self.name!r} stage "
                f"(its parameters: {known})",
                stage=stage,
                key=f"params.{unknown[0]}",
            )
        resolved: dict[str, Any] = {}
        for key, param in self.params.items():
            if key not in given:
                if param.default is REQUIRED:
                    raise ParameterValueError(
                        f"parameter {key!r} is required ({param.describe()}): {param.doc}",
                        stage=stage,
                        key="params",
                    )
                resolved[key] = param.default
                continue
            try:
                resolved[key] = param.check(given[key])
            except ValueError as exc:
                raise ParameterValueError(
                    f"parameter {key!r}: {exc} (got {given[key]!r})",
                    stage=stage,
                    key=f"params.{key}",
                ) from None
        return resolved
