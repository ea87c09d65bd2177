"""Stage settings, declared once.

:data:`STAGE_SETTINGS` is the one table of the settings every stage takes (its name, its
default, how a written value is parsed, what it accepts, one line of doc). The Python
API (``Pipeline.add_stage(**settings)`` and pipeline ``defaults``), the TOML loader,
validation (:func:`~pydotcompute.pipeline.plan_pipeline`), the ``pydotcompute validate``
and ``pydotcompute settings`` commands and the README's settings table all read it, so a
new setting is one :class:`StageSetting` entry (and its tests). Code that acts on a
setting reads the parsed value from ``PlannedStage.settings``, or through a typed
property of :class:`~pydotcompute.pipeline.PlannedStage`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar

from ..dataflow import MIN_SLICE_ROWS, OFFLOAD_MIN_VALUES, RING_BYTES
from ..errors import InvalidArgumentError, ParameterValueError, UnknownParameterError
from ..runtime import BackpressureStrategy, RestartPolicy

__all__ = ["STAGE_SETTINGS", "STRUCTURE_KEYS", "StageSetting", "settings_table"]

_T = TypeVar("_T")

#: The keys of a stage entry that shape the graph rather than set a value: not settings.
STRUCTURE_KEYS: Final = ("stage", "inputs", "params")


def _as_written(value: Any) -> Any:
    return value


@dataclasses.dataclass(frozen=True)
class StageSetting(Generic[_T]):
    """One stage setting: what a pipeline author writes, and what the plan holds (``_T``).

    ``parse(name, value)`` turns a written value (a TOML value, or what was passed to
    ``add_stage``) into the value the plan holds; it raises
    :class:`~pydotcompute.errors.ParameterValueError` (or another
    ``PipelineValidationError``) whose message names the setting and what it accepts.
    ``show`` turns a held value back into its written form (for reports and JSON).
    The default must parse: a bad entry fails when it is declared.
    """

    name: str
    default: Any  #: as written: a TOML value
    parse: Callable[[str, Any], _T]
    accepts: str  #: what may be written, for people (docs, the settings listing)
    doc: str  #: one line
    show: Callable[[_T], Any] = _as_written

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise InvalidArgumentError(f"a setting's name must be an identifier, got {self.name!r}")
        self.check(self.default)

    def check(self, value: Any) -> _T:
        """The value the plan holds for the written ``value``.

        Raises:
            ParameterValueError: ``value`` is not one this setting accepts (``key`` is
                the setting's name; the caller adds the stage and location).
        """
        return self.parse(self.name, value)


def settings_table(*entries: StageSetting[Any]) -> Mapping[str, StageSetting[Any]]:
    """A read-only table of ``entries`` by name, in the order given.

    Raises:
        ValueError: two entries share a name, or one is named like a structure key.
    """
    table: dict[str, StageSetting[Any]] = {}
    for entry in entries:
        if entry.name in table or entry.name in STRUCTURE_KEYS:
            raise InvalidArgumentError(
                f"stage setting {entry.name!r} is declared twice or is reserved"
            )
        table[entry.name] = entry
    return MappingProxyType(table)


# -- parsers: each names the setting and what it accepts --------------------------------


def _positive_int(name: str, value: Any) -> int:
    if type(value) is not int or value < 1:
        raise ParameterValueError(f"{name} must be a positive integer, got {value!r}", key=name)
    return value


def _boolean(name: str, value: Any) -> bool:
    if type(value) is not bool:
        raise ParameterValueError(f"{name} must be true or false, got {value!r}", key=name)
    return value


OFFLOAD_CHOICES: Final = ("auto", "thread", "none")


def _offload(name: str, value: Any) -> str:
    if value not in OFFLOAD_CHOICES:
        raise ParameterValueError(
            f"{name} must be one of {', '.join(OFFLOAD_CHOICES)}, got {value!r}", key=name
        )
    return str(value)


def _positive_int_or_auto(name: str, value: Any) -> int | None:
    if value == "auto":
        return None
    if type(value) is not int or value < 1:
        raise ParameterValueError(
            f"{name} must be a positive integer or 'auto', got {value!r}", key=name
        )
    return value


def _backpressure(name: str, value: Any) -> BackpressureStrategy:
    try:
        return BackpressureStrategy.parse(value)
    except ValueError as exc:
        raise ParameterValueError(f"{name}: {exc}", key=name) from None


def _backend_name(name: str, value: Any) -> str:
    # Only the name's shape: validation then looks the backend up among the plugins.
    if not isinstance(value, str) or not value:
        raise ParameterValueError(f"{name} must be a backend's name, got {value!r}", key=name)
    return value


_RESTART_FIELDS: Final = tuple(f.name for f in dataclasses.fields(RestartPolicy))


def _restart_policy(name: str, value: Any) -> RestartPolicy:
    if isinstance(value, RestartPolicy):
        return value
    if value == "never":
        return RestartPolicy.never()
    if not isinstance(value, Mapping):
        raise ParameterValueError(
            f"{name} must be 'never' or a table of {', '.join(_RESTART_FIELDS)}; got {value!r}",
            key=name,
        )
    unknown = sorted(set(value) - set(_RESTART_FIELDS))
    if unknown:
        raise UnknownParameterError(
            f"{name}: unknown field {unknown[0]!r} (fields: {', '.join(_RESTART_FIELDS)})",
            key=name,
        )
    try:
        return RestartPolicy(**value)
    except (TypeError, ValueError) as exc:
        raise ParameterValueError(f"{name}: {exc}", key=name) from None


def _show_restart(policy: RestartPolicy) -> Any:
    return "never" if policy == RestartPolicy.never() else dataclasses.asdict(policy)


def _amount(name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ParameterValueError(f"{name} must be a number >= 0, got {value!r}", key=name)
    return float(value)


def _amount_or_auto(name: str, value: Any) -> float | None:
    if value == "auto":
        return None
    try:
        return _amount(name, value)
    except ParameterValueError:
        raise ParameterValueError(
            f"{name} must be a number >= 0 or 'auto', got {value!r}", key=name
        ) from None


def _resources(name: str, value: Any) -> Mapping[str, float]:
    if not isinstance(value, Mapping):
        raise ParameterValueError(
            f"{name} must be a table of resource names to amounts, got {value!r}", key=name
        )
    held: dict[str, float] = {}
    for resource, amount in value.items():
        if not isinstance(resource, str) or not resource:
            raise ParameterValueError(
                f"{name}: a resource's name must be a non-empty string, got {resource!r}",
                key=name,
            )
        if resource in ("CPU", "GPU"):
            raise ParameterValueError(
                f"{name}: {resource!r} is set with num_{resource.lower()}s, not here", key=name
            )
        try:
            held[resource] = _amount(f"{name}.{resource}", amount)
        except ParameterValueError as exc:
            raise ParameterValueError(str(exc), key=name) from None
    return MappingProxyType(held)


# -- the table -------------------------------------------------------------------------

WORKERS: Final = StageSetting[int](
    "workers",
    1,
    _positive_int,
    "a positive integer",
    "worker kernels running the stage; its input messages are dealt among them in turn",
)
QUEUE_SIZE: Final = StageSetting[int](
    "queue_size",
    1024,
    _positive_int,
    "a positive integer",
    "messages each worker's input queue holds",
)
BACKPRESSURE: Final = StageSetting[BackpressureStrategy](
    "backpressure",
    "block",
    _backpressure,
    ", ".join(m.value for m in BackpressureStrategy),
    "what a full input queue does with one more message: wait, refuse it, or evict the oldest",
    show=lambda strategy: strategy.value,
)
BATCH_SIZE: Final = StageSetting[int](
    "batch_size",
    1024,
    _positive_int,
    "a positive integer",
    "most messages a worker takes from its queue at once",
)
BACKEND: Final = StageSetting[str](
    "backend",
    "numpy",
    _backend_name,
    "an installed backend's name",
    "the compute backend the stage's arrays live on (`pydotcompute stages` lists them)",
)
RESTART: Final = StageSetting[RestartPolicy](
    "restart",
    "never",
    _restart_policy,
    "never, or a table of " + ", ".join(_RESTART_FIELDS),
    "when a failed worker is started again; past the policy's limit the run stops",
    show=_show_restart,
)
RING_ROWS: Final = StageSetting[int | None](
    "ring_rows",
    "auto",
    _positive_int_or_auto,
    "a positive integer, or auto",
    "rows of each device ring into a worker, when it shares a device backend with the "
    "stage feeding it (at least two of that stage's max_batch_rows); auto: no ring, "
    f"batches go by reference, at most {RING_BYTES >> 20} MiB or two of the largest "
    "batch in flight per pair of workers",
    show=lambda rows: "auto" if rows is None else rows,
)
MAX_BATCH_ROWS: Final = StageSetting[int | None](
    "max_batch_rows",
    "auto",
    _positive_int_or_auto,
    "a positive integer, or auto",
    "most rows of one RecordBatch the stage emits (a one-to-one stage: the most it is fed); "
    "a device ring after it must hold two; auto: unknown until the batches come",
    show=lambda rows: "auto" if rows is None else rows,
)

FUSE: Final = StageSetting[bool](
    "fuse",
    True,
    _boolean,
    "true or false",
    "run in one worker with the one-to-one stages next to it (same backend, workers and "
    "restart policy, no lossy queue between): no queue hop; false keeps it apart",
)

# Off by default: measured on 2 cores (benchmarks/bench_cores.py), handing the guide's
# 4,096 x 64 batches to a thread cost more (GIL handoffs, a wakeup per hop) than the
# overlap gained: 1.4-1.5 against 1.8-2.5 M records/s. It pays for longer array work.
OFFLOAD: Final = StageSetting[str](
    "offload",
    "none",
    _offload,
    ", ".join(OFFLOAD_CHOICES),
    "where the stage's array work runs: on the event loop (none), or in a worker thread "
    "so the loop goes on and another core helps (thread; auto: for host arrays of "
    f"{OFFLOAD_MIN_VALUES:,} values or more); a thread pays for long array work only",
)

# On by default: measured on 2 cores (benchmarks/bench_cores.py), the guide's 4,096 x
# 64 batches cut in two went from 2.4 to 3.6 M records/s (the slice the loop's thread
# keeps is still in its cache; only the other one crosses to the other core).
THREADS: Final = StageSetting[int | None](
    "threads",
    "auto",
    _positive_int_or_auto,
    "a positive integer, or auto",
    "threads a host batch's work is cut into by rows, for a stage whose work treats each "
    f"row on its own (at least {MIN_SLICE_ROWS:,} rows a slice; results are the same bit "
    "for bit); auto: the cores the worker may use (engine ray: its actor's num_cpus)",
    show=lambda threads: "auto" if threads is None else threads,
)

# Placement: read by the Ray engine only (see pipeline/_ray); the local engine runs
# every worker in its own process whatever they say.
NUM_CPUS: Final = StageSetting[float | None](
    "num_cpus",
    "auto",
    _amount_or_auto,
    "a number >= 0, or auto",
    "engine ray: CPUs each worker's actor reserves (fractions allowed); auto: Ray's actor default",
    show=lambda cpus: "auto" if cpus is None else cpus,
)
NUM_GPUS: Final = StageSetting[float](
    "num_gpus",
    0,
    _amount,
    "a number >= 0",
    "engine ray: GPUs each worker's actor reserves (fractions allowed)",
)
RESOURCES: Final = StageSetting[Mapping[str, float]](
    "resources",
    {},
    _resources,
    "a table of resource names to numbers >= 0",
    "engine ray: custom resources each worker's actor reserves (pins it to nodes that have them)",
    show=dict,
)

#: Every stage setting, in the order reports list them.
STAGE_SETTINGS: Final = settings_table(
    WORKERS,
    QUEUE_SIZE,
    BACKPRESSURE,
    BATCH_SIZE,
    BACKEND,
    RESTART,
    RING_ROWS,
    MAX_BATCH_ROWS,
    FUSE,
    OFFLOAD,
    THREADS,
    NUM_CPUS,
    NUM_GPUS,
    RESOURCES,
)
