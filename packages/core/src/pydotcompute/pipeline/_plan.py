"""Validating a pipeline definition into a plan: every check before anything launches.

:func:`plan_pipeline` resolves each stage's type, backend, settings and parameters
through the installed plugins, connects inputs to outputs, orders the stages
topologically, and names every worker's kernel. Each problem is a
:class:`PipelineValidationError` subclass naming the stage and, for a TOML file, the
line of the offending key.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import (
    BackendProtocolError,
    BackendUnavailableError,
    DanglingInputError,
    ParameterValueError,
    PipelineCycleError,
    PipelineResourceWarning,
    PipelineValidationError,
    PipelineValidationErrors,
    PluginConflictError,
    UnknownParameterError,
)
from ._dtype import parse_dtype
from ._fusion import fusable, fused_groups
from ._resources import resource_warnings
from ._settings import (
    BACKEND,
    BACKPRESSURE,
    BATCH_SIZE,
    MAX_BATCH_ROWS,
    QUEUE_SIZE,
    RESTART,
    RING_ROWS,
    STAGE_SETTINGS,
    STRUCTURE_KEYS,
    WORKERS,
    StageSetting,
)

if TYPE_CHECKING:
    from ..compute import ComputeBackend
    from ..dataflow import StageDefinition
    from ..plugins import PluginManager
    from ..runtime import BackpressureStrategy, RestartPolicy

__all__ = [
    "PipelinePlan",
    "PlannedStage",
    "StageSpec",
    "plan_pipeline",
]

_T = TypeVar("_T")

#: The pipeline attribute naming its input dtype (a key of ``[pipeline]``, not a setting).
DTYPE_KEY = "dtype"
#: The pipeline attribute naming the engine that runs it (a key of ``[pipeline]``).
ENGINE_KEY = "engine"
#: The pipeline attribute naming the Ray cluster engine ray joins (a key of ``[pipeline]``).
ADDRESS_KEY = "address"
#: The engines a pipeline runs on: this process's runtime, or a Ray cluster.
ENGINES = ("local", "ray")


@dataclasses.dataclass(frozen=True)
class StageSpec:
    """One stage as the pipeline's author wrote it, before validation.

    ``inputs`` None means "the stage defined just before" (the first stage: none, so it
    is fed by the pipeline). ``settings`` holds the stage settings as written (see
    :data:`~pydotcompute.pipeline.STAGE_SETTINGS`); one missing or None takes the
    pipeline's default. ``locations`` maps keys (``""`` for the stage's own table,
    ``"params.NAME"`` for a parameter) to their line in the source file, when there is one.
    """

    name: str
    stage: str
    inputs: tuple[str, ...] | None = None
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    locations: Mapping[str, int] = dataclasses.field(default_factory=dict)

    def line(self, key: str = "") -> int | None:
        """The source line of ``key`` (falling back to the stage's table), if known."""
        if key in self.locations:
            return self.locations[key]
        head = key.split(".", 1)[0]
        return self.locations.get(head, self.locations.get(""))


@dataclasses.dataclass(frozen=True)
class PlannedStage:
    """A validated stage: everything needed to launch its workers.

    ``settings`` holds every stage setting's parsed value by name; :meth:`setting` reads
    one typed, and the properties below name the ones the run uses.
    """

    name: str
    definition: StageDefinition
    params: Mapping[str, Any]
    backend: ComputeBackend  #: the backend named by the ``backend`` setting, created
    settings: Mapping[str, Any]
    inputs: tuple[str, ...]  #: upstream stage names (empty: fed by the pipeline)
    outputs: tuple[str, ...]  #: downstream stage names (empty: a sink)
    kernel_ids: tuple[str, ...]  #: one per worker

    def setting(self, setting: StageSetting[_T]) -> _T:
        """The parsed value of ``setting``."""
        value: _T = self.settings[setting.name]
        return value

    @property
    def workers(self) -> int:
        return self.setting(WORKERS)

    @property
    def queue_size(self) -> int:
        return self.setting(QUEUE_SIZE)

    @property
    def backpressure(self) -> BackpressureStrategy:
        return self.setting(BACKPRESSURE)

    @property
    def batch_size(self) -> int:
        return self.setting(BATCH_SIZE)

    @property
    def backend_name(self) -> str:
        return self.setting(BACKEND)

    @property
    def restart(self) -> RestartPolicy:
        """Each worker kernel's restart policy."""
        return self.setting(RESTART)

    @property
    def ring_rows(self) -> int | None:
        """Rows of each device ring into a worker; None: no ring, batches by reference."""
        return self.setting(RING_ROWS)

    @property
    def max_batch_rows(self) -> int | None:
        """Most rows of one RecordBatch this stage emits; None: not declared."""
        return self.setting(MAX_BATCH_ROWS)

    @property
    def is_source(self) -> bool:
        return not self.inputs

    @property
    def is_sink(self) -> bool:
        return not self.outputs


@dataclasses.dataclass(frozen=True)
class PipelinePlan:
    """A validated pipeline: stages in topological order (sources first)."""

    name: str
    stages: tuple[PlannedStage, ...]
    #: What the plan asks beyond this machine (already warned when it was planned).
    warnings: tuple[PipelineResourceWarning, ...] = ()
    #: The float dtype input values are read as (``"float16"``, ``"float32"`` or
    #: ``"float64"``); None: text input as float64, an array in its own float dtype.
    dtype: str | None = None
    #: The stages as they run: each group in one set of workers, one-to-one chains
    #: fused (see :mod:`._fusion`), every other stage alone; topological order.
    #: Empty: every stage alone.
    groups: tuple[tuple[str, ...], ...] = ()
    #: Where it runs: ``"local"`` (this process's runtime) or ``"ray"`` (a Ray cluster).
    engine: str = "local"
    #: Engine ray: the cluster to join (``"auto"``, ``"HOST:PORT"``); None: a local Ray
    #: starts and stops with each run.
    address: str | None = None

    def group_of(self, name: str) -> tuple[str, ...]:
        """The stages that run in the same workers as stage ``name`` (itself included)."""
        for group in self.groups:
            if name in group:
                return group
        return (name,)

    def __getitem__(self, name: str) -> PlannedStage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    @property
    def sources(self) -> tuple[PlannedStage, ...]:
        return tuple(s for s in self.stages if s.is_source)

    @property
    def sinks(self) -> tuple[PlannedStage, ...]:
        return tuple(s for s in self.stages if s.is_sink)


def plan_pipeline(
    name: str,
    specs: Sequence[StageSpec],
    defaults: Mapping[str, Any],
    plugins: PluginManager,
    *,
    source: str | None = None,
    default_lines: Mapping[str, int] | None = None,
    settings: Mapping[str, StageSetting[Any]] = STAGE_SETTINGS,
    found: Sequence[PipelineValidationError] = (),
    dtype: Any = None,
    engine: Any = None,
    address: Any = None,
) -> PipelinePlan:
    """Validate ``specs`` and return the plan.

    ``defaults`` change the settings' defaults for every stage; ``settings`` is the
    table of stage settings to check against (the built-in :data:`STAGE_SETTINGS`
    unless a caller extends it); ``found`` are problems a reader already found in the
    file, reported together with the ones found here. ``dtype`` is the pipeline's
    input dtype as written (None, or one of float16, float32, float64; located at
    ``default_lines["dtype"]``); ``engine`` and ``address`` where it runs (None, or
    ``"local"`` or ``"ray"``; the Ray cluster to join).

    Every problem is collected before raising, so one pass reports them all; checks
    that would only echo an earlier problem are skipped (no cycle check while an input
    names no stage, no parameter check for an unknown stage type). A plan that asks for
    far more than this machine has gets a :class:`PipelineResourceWarning` per
    setting, warned and kept in :attr:`PipelinePlan.warnings`.

    Raises:
        PipelineValidationError: the one problem found (of its own subclass), or a
            :class:`PipelineValidationErrors` holding every problem, sorted by line.
    """
    checker = _Checker(source, default_lines or {}, settings)
    checker.errors.extend(found)
    if dtype is not None:
        try:
            parse_dtype(dtype)
        except PipelineValidationError as exc:
            checker.report(
                exc.located(stage=None, source=source, line=(default_lines or {}).get(DTYPE_KEY))
            )
    if engine is not None and engine not in ENGINES:
        checker.report(
            ParameterValueError(
                f"engine must be one of {', '.join(ENGINES)}, got {engine!r}",
                key=ENGINE_KEY,
                source=source,
                line=(default_lines or {}).get(ENGINE_KEY),
            )
        )
    if address is not None and (not isinstance(address, str) or not address):
        checker.report(
            ParameterValueError(
                f"address must be a Ray cluster's address ('auto', 'HOST:PORT'), got {address!r}",
                key=ADDRESS_KEY,
                source=source,
                line=(default_lines or {}).get(ADDRESS_KEY),
            )
        )
    if not specs:
        if not checker.errors:  # else the reader's problems say why there are none
            checker.report(
                PipelineValidationError("the pipeline has no stages", source=source, line=None)
            )
        checker.raise_found()
    resolved_defaults = checker.settings_defaults(defaults)
    seen: set[str] = set()
    for spec in specs:
        if not isinstance(spec.name, str) or not spec.name:
            checker.report(
                checker.error(PipelineValidationError, "a stage needs a non-empty name", spec)
            )
        elif spec.name in seen:
            checker.report(
                checker.error(PipelineValidationError, "the stage name is used twice", spec)
            )
        seen.add(spec.name)
        checker.known_settings(spec)
    if len(seen) < len(specs) or "" in seen:
        checker.raise_found()  # the graph's checks below need every name once
    inputs = _resolve_inputs(specs, checker)
    order = _topological_order(specs, inputs, checker) if inputs is not None else None
    wired = inputs or {}
    outputs: dict[str, list[str]] = {s.name: [] for s in specs}
    for spec in specs:
        for upstream in wired.get(spec.name, ()):
            outputs[upstream].append(spec.name)
    checked: dict[str, PlannedStage] = {}
    for spec in specs:
        stage = checker.stage(
            spec, resolved_defaults, plugins, wired.get(spec.name, ()), outputs[spec.name]
        )
        if stage is not None:
            checked[spec.name] = stage
    kernel_owner: dict[str, str] = {}
    for spec in specs:
        for kid in checked[spec.name].kernel_ids if spec.name in checked else ():
            if kid in kernel_owner:
                checker.report(
                    checker.error(
                        PipelineValidationError,
                        f"its worker kernel id {kid!r} collides with stage "
                        f"{kernel_owner[kid]!r}; rename one of them",
                        spec,
                    )
                )
            kernel_owner.setdefault(kid, spec.name)
    for spec in specs:
        if spec.name in checked:
            _check_ring_room(checked[spec.name], checked, spec, checker)
    checker.raise_found()
    assert order is not None  # no problem found, so the graph was checked
    planned = tuple(checked[stage_name] for stage_name in order)
    found_warnings = resource_warnings(planned, source=source)
    for warning in found_warnings:
        warnings.warn(warning, stacklevel=3)
    return PipelinePlan(
        name=name,
        stages=planned,
        warnings=found_warnings,
        dtype=dtype,
        groups=fused_groups(planned),
        engine=engine or "local",
        address=address,
    )


def _check_ring_room(
    consumer: PlannedStage,
    checked: Mapping[str, PlannedStage],
    spec: StageSpec,
    checker: _Checker,
) -> None:
    """Report a device ring into ``consumer`` that cannot hold two of the largest batch
    a stage feeding it declares it emits (``max_batch_rows``): such a ring would make
    every batch wait for the one before it to be taken, or worse."""
    rows = consumer.ring_rows
    if rows is None or not consumer.definition.reads_rings:
        return
    for name in consumer.inputs:
        producer = checked.get(name)
        if (
            producer is None
            or producer.backend is not consumer.backend
            or not consumer.backend.capabilities.device_rings
            or producer.max_batch_rows is None
            or fusable(producer, consumer)
        ):
            continue
        need = 2 * producer.max_batch_rows
        if rows < need:
            checker.report(
                checker.error(
                    ParameterValueError,
                    f"ring_rows = {rows} cannot hold two batches of {producer.max_batch_rows} "
                    f"rows, the most stage {name!r} emits (its max_batch_rows); set ring_rows "
                    f"to at least {need}, or to 'auto' to pass batches by reference",
                    spec,
                    "ring_rows",
                )
            )


def _resolve_inputs(
    specs: Sequence[StageSpec], checker: _Checker
) -> dict[str, tuple[str, ...]] | None:
    """Each stage's upstream names (None: some stage's inputs are wrong, reported)."""
    names = {s.name for s in specs}
    result: dict[str, tuple[str, ...]] = {}
    previous: str | None = None
    wrong = False
    for spec in specs:
        if spec.inputs is None:
            result[spec.name] = () if previous is None else (previous,)
        else:
            problems = _input_problems(spec, names, specs)
            for cls, problem in problems:
                checker.report(checker.error(cls, problem, spec, "inputs"))
            wrong = wrong or bool(problems)
            result[spec.name] = spec.inputs
        previous = spec.name
    return None if wrong else result


def _input_problems(
    spec: StageSpec, names: set[str], specs: Sequence[StageSpec]
) -> list[tuple[type[PipelineValidationError], str]]:
    assert spec.inputs is not None
    if not isinstance(spec.inputs, tuple) or not all(isinstance(i, str) for i in spec.inputs):
        return [(ParameterValueError, f"inputs must be a list of stage names, got {spec.inputs!r}")]
    problems: list[tuple[type[PipelineValidationError], str]] = []
    for upstream in spec.inputs:
        if upstream not in names:
            known = ", ".join(s.name for s in specs if s.name != spec.name) or "none"
            problems.append(
                (
                    DanglingInputError,
                    f"input {upstream!r} is not a stage of this pipeline (stages: {known})",
                )
            )
    repeated = sorted({i for i in spec.inputs if spec.inputs.count(i) > 1})
    if repeated:
        problems.append((ParameterValueError, f"input {repeated[0]!r} is listed more than once"))
    return problems


def _topological_order(
    specs: Sequence[StageSpec], inputs: Mapping[str, tuple[str, ...]], checker: _Checker
) -> list[str] | None:
    """Kahn's algorithm, ties broken by definition order; a cycle is spelled out
    (reported, and None returned)."""
    position = {s.name: i for i, s in enumerate(specs)}
    pending = {name: len(ups) for name, ups in inputs.items()}
    downstream: dict[str, list[str]] = {name: [] for name in inputs}
    for name, ups in inputs.items():
        for upstream in ups:
            downstream[upstream].append(name)
    ready = sorted((n for n, c in pending.items() if c == 0), key=position.__getitem__)
    order: list[str] = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for child in downstream[name]:
            pending[child] -= 1
            if pending[child] == 0:
                ready.append(child)
                ready.sort(key=position.__getitem__)
    if len(order) == len(specs):
        return order
    cycle = _find_cycle({n for n, c in pending.items() if c > 0}, inputs, position)
    by_name = {s.name: s for s in specs}
    checker.report(
        checker.error(
            PipelineCycleError,
            "its inputs form a cycle: "
            + " -> ".join(cycle)
            + " (pipelines must be acyclic)"
            + _defaulted_hint(cycle, by_name, inputs),
            by_name[cycle[0]],
            "inputs",
        )
    )
    return None


def _defaulted_hint(
    cycle: Sequence[str], by_name: Mapping[str, StageSpec], inputs: Mapping[str, tuple[str, ...]]
) -> str:
    """Why a stage in ``cycle`` reads the stage before it, when nobody wrote so."""
    defaulted = [n for n in dict.fromkeys(cycle) if by_name[n].inputs is None]
    if not defaulted:
        return ""
    told = "; ".join(
        f"stage {n!r} sets no inputs, so it reads {inputs[n][0]!r}, the stage defined just "
        "before it"
        for n in defaulted
    )
    return f"; {told} (write inputs = [...] to wire it, or inputs = [] for a source)"


def _find_cycle(
    stuck: set[str], inputs: Mapping[str, tuple[str, ...]], position: Mapping[str, int]
) -> list[str]:
    """A cycle among ``stuck`` stages, in data-flow order, first and last the same."""
    start = min(stuck, key=position.__getitem__)
    path: list[str] = [start]
    seen = {start: 0}
    node = start
    while True:
        upstream = min((u for u in inputs[node] if u in stuck), key=position.__getitem__)
        if upstream in seen:
            loop = [*path[seen[upstream] :], upstream]
            return list(reversed(loop))
        seen[upstream] = len(path)
        path.append(upstream)
        node = upstream


class _Checker:
    """Builds located errors, collects them, and checks settings against the table."""

    def __init__(
        self,
        source: str | None,
        default_lines: Mapping[str, int],
        table: Mapping[str, StageSetting[Any]],
    ) -> None:
        self.source = source
        self.default_lines = default_lines
        self.table = table
        self.errors: list[PipelineValidationError] = []
        self._bad_defaults: set[str] = set()  # reported once, not once per stage

    def error(
        self, cls: type[PipelineValidationError], problem: str, spec: StageSpec, key: str = ""
    ) -> PipelineValidationError:
        return cls(
            problem, stage=spec.name, key=key or None, source=self.source, line=spec.line(key)
        )

    def report(self, error: PipelineValidationError) -> None:
        self.errors.append(error)

    def raise_found(self) -> None:
        """Raise what was found: the one problem itself, or all of them together."""
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise PipelineValidationErrors(self.errors, source=self.source)

    def settings_defaults(self, defaults: Mapping[str, Any]) -> dict[str, Any]:
        """Every setting's default, the pipeline's where it gives one (checked per stage,
        so a bad one is reported against the first stage it would configure)."""
        merged = {name: setting.default for name, setting in self.table.items()}
        for key, value in defaults.items():
            if key not in self.table:
                self.report(
                    UnknownParameterError(
                        f"unknown pipeline default {key!r} "
                        f"(stage settings: {', '.join(self.table)})",
                        key=key,
                        source=self.source,
                        line=self.default_lines.get(key),
                    )
                )
            elif value is not None:
                merged[key] = value
        return merged

    def known_settings(self, spec: StageSpec) -> None:
        """Report each setting the table does not declare, pointing parameters to params."""
        for key in spec.settings:
            if key not in self.table:
                where = (
                    f"under [stages.{spec.name}.params]"
                    if self.source is not None
                    else "in its params"
                )
                keys = ", ".join((*STRUCTURE_KEYS[:2], *self.table, *STRUCTURE_KEYS[2:]))
                self.report(
                    self.error(
                        UnknownParameterError,
                        f"unknown setting {key!r} (settings: {keys}; the stage's own "
                        f"parameters go {where})",
                        spec,
                        key,
                    )
                )

    def setting_values(
        self, spec: StageSpec, defaults: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        """Every setting's parsed value for ``spec`` (None if one is bad: each bad one is
        reported at the stage's key, or once at the pipeline default it came from)."""
        values: dict[str, Any] = {}
        bad = False
        for name, setting in self.table.items():
            written = spec.settings.get(name)
            try:
                values[name] = setting.check(defaults[name] if written is None else written)
            except PipelineValidationError as exc:
                bad = True
                if written is None:
                    if name in self._bad_defaults:
                        continue
                    self._bad_defaults.add(name)
                self.report(
                    exc.located(
                        stage=spec.name, source=self.source, line=self.setting_line(spec, name)
                    )
                )
        return None if bad else MappingProxyType(values)

    def setting_line(self, spec: StageSpec, name: str) -> int | None:
        """Where ``spec``'s value of setting ``name`` was written: its own key, else the
        pipeline default's, else the stage's table."""
        if spec.settings.get(name) is None and name in self.default_lines:
            return self.default_lines[name]
        return spec.line(name)

    def definition(self, spec: StageSpec, plugins: PluginManager) -> StageDefinition | None:
        """The stage type ``spec`` names (None: reported)."""
        if not isinstance(spec.stage, str) or not spec.stage:
            self.report(
                self.error(
                    ParameterValueError,
                    f"stage must be a stage type's name, got {spec.stage!r}",
                    spec,
                    "stage",
                )
            )
            return None
        try:
            return plugins.stage(spec.stage)
        except PipelineValidationError as exc:
            self.report(exc.located(stage=spec.name, source=self.source, line=spec.line("stage")))
        except PluginConflictError as exc:
            error = self.error(PipelineValidationError, str(exc), spec, "stage")
            error.__cause__ = exc
            self.report(error)
        return None

    def backend(self, spec: StageSpec, name: str, plugins: PluginManager) -> ComputeBackend | None:
        """The backend ``spec`` runs on (None: reported)."""
        line = self.setting_line(spec, BACKEND.name)
        try:
            return plugins.backend(name)
        except PipelineValidationError as exc:
            self.report(exc.located(stage=spec.name, source=self.source, line=line))
        except (BackendUnavailableError, BackendProtocolError, PluginConflictError) as exc:
            error = PipelineValidationError(
                str(exc), stage=spec.name, key=BACKEND.name, source=self.source, line=line
            )
            error.__cause__ = exc
            self.report(error)
        return None

    def params(self, spec: StageSpec, definition: StageDefinition) -> Mapping[str, Any] | None:
        """The stage's parameters, resolved against its type (None: reported)."""
        written: Any = spec.params  # as read from TOML: maybe not a table at all
        if not isinstance(written, Mapping):
            self.report(
                self.error(
                    ParameterValueError, "params must be a table of parameters", spec, "params"
                )
            )
            return None
        try:
            return definition.resolve_params(written, stage=spec.name)
        except PipelineValidationError as exc:
            self.report(
                exc.located(
                    stage=spec.name, source=self.source, line=spec.line(exc.key or "params")
                )
            )
        return None

    def stage(
        self,
        spec: StageSpec,
        defaults: Mapping[str, Any],
        plugins: PluginManager,
        inputs: tuple[str, ...],
        outputs: list[str],
    ) -> PlannedStage | None:
        """``spec`` checked and planned (None: its problems are reported)."""
        definition = self.definition(spec, plugins)
        settings = self.setting_values(spec, defaults)
        # The table checks the name's shape; which backends exist is the plugins' to say.
        backend = None if settings is None else self.backend(spec, settings[BACKEND.name], plugins)
        params = None if definition is None else self.params(spec, definition)
        if definition is None or settings is None or backend is None or params is None:
            return None
        workers = settings[WORKERS.name]
        kernel_ids = (
            (spec.name,) if workers == 1 else tuple(f"{spec.name}_{i}" for i in range(workers))
        )
        return PlannedStage(
            name=spec.name,
            definition=definition,
            params=params,
            backend=backend,
            settings=settings,
            inputs=inputs,
            outputs=tuple(outputs),
            kernel_ids=kernel_ids,
        )
