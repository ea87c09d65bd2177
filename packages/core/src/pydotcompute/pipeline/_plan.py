"""Validating a pipeline definition into a plan: every check before anything launches.

:func:`plan_pipeline` resolves each stage's type, backend, settings and parameters
through the installed plugins, connects inputs to outputs, orders the stages
topologically, and names every worker's kernel. Each problem is a
:class:`PipelineValidationError` subclass naming the stage and, for a TOML file, the
line of the offending key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import (
    BackendProtocolError,
    BackendUnavailableError,
    DanglingInputError,
    ParameterValueError,
    PipelineCycleError,
    PipelineValidationError,
    PluginConflictError,
    UnknownParameterError,
)
from ._settings import (
    BACKEND,
    BACKPRESSURE,
    BATCH_SIZE,
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
        """Rows of each device ring into a worker; None: fill RING_BYTES."""
        return self.setting(RING_ROWS)

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
) -> PipelinePlan:
    """Validate ``specs`` and return the plan.

    ``defaults`` change the settings' defaults for every stage; ``settings`` is the
    table of stage settings to check against (the built-in :data:`STAGE_SETTINGS`
    unless a caller extends it).

    Raises:
        PipelineValidationError: (or a subclass) the first problem found, located.
    """
    checker = _Checker(source, default_lines or {}, settings)
    if not specs:
        raise PipelineValidationError("the pipeline has no stages", source=source, line=None)
    resolved_defaults = checker.settings_defaults(defaults)
    seen: set[str] = set()
    for spec in specs:
        if not isinstance(spec.name, str) or not spec.name:
            raise checker.error(PipelineValidationError, "a stage needs a non-empty name", spec)
        if spec.name in seen:
            raise checker.error(PipelineValidationError, "the stage name is used twice", spec)
        seen.add(spec.name)
        checker.known_settings(spec)
    inputs = _resolve_inputs(specs, checker)
    order = _topological_order(specs, inputs, checker)
    outputs: dict[str, list[str]] = {s.name: [] for s in specs}
    for spec in specs:
        for upstream in inputs[spec.name]:
            outputs[upstream].append(spec.name)
    by_name = {s.name: s for s in specs}
    planned: list[PlannedStage] = []
    kernel_owner: dict[str, str] = {}
    for stage_name in order:
        spec = by_name[stage_name]
        stage = checker.stage(
            spec, resolved_defaults, plugins, inputs[stage_name], outputs[stage_name]
        )
        for kid in stage.kernel_ids:
            if kid in kernel_owner:
                raise checker.error(
                    PipelineValidationError,
                    f"its worker kernel id {kid!r} collides with stage {kernel_owner[kid]!r}; "
                    "rename one of them",
                    spec,
                )
            kernel_owner[kid] = stage_name
        planned.append(stage)
    return PipelinePlan(name=name, stages=tuple(planned))


def _resolve_inputs(specs: Sequence[StageSpec], checker: _Checker) -> dict[str, tuple[str, ...]]:
    names = {s.name for s in specs}
    result: dict[str, tuple[str, ...]] = {}
    previous: str | None = None
    for spec in specs:
        if spec.inputs is None:
            result[spec.name] = () if previous is None else (previous,)
        else:
            if not isinstance(spec.inputs, tuple) or not all(
                isinstance(i, str) for i in spec.inputs
            ):
                raise checker.error(
                    ParameterValueError,
                    f"inputs must be a list of stage names, got {spec.inputs!r}",
                    spec,
                    "inputs",
                )
            for upstream in spec.inputs:
                if upstream not in names:
                    known = ", ".join(s.name for s in specs if s.name != spec.name) or "none"
                    raise checker.error(
                        DanglingInputError,
                        f"input {upstream!r} is not a stage of this pipeline (stages: {known})",
                        spec,
                        "inputs",
                    )
            repeated = sorted({i for i in spec.inputs if spec.inputs.count(i) > 1})
            if repeated:
                raise checker.error(
                    ParameterValueError,
                    f"input {repeated[0]!r} is listed more than once",
                    spec,
                    "inputs",
                )
            result[spec.name] = spec.inputs
        previous = spec.name
    return result


def _topological_order(
    specs: Sequence[StageSpec], inputs: Mapping[str, tuple[str, ...]], checker: _Checker
) -> list[str]:
    """Kahn's algorithm, ties broken by definition order; a cycle is spelled out."""
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
    spec = next(s for s in specs if s.name == cycle[0])
    raise checker.error(
        PipelineCycleError,
        "its inputs form a cycle: " + " -> ".join(cycle) + " (pipelines must be acyclic)",
        spec,
        "inputs",
    )


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
    """Builds located errors and checks settings against the settings table."""

    def __init__(
        self,
        source: str | None,
        default_lines: Mapping[str, int],
        table: Mapping[str, StageSetting[Any]],
    ) -> None:
        self.source = source
        self.default_lines = default_lines
        self.table = table

    def error(
        self, cls: type[PipelineValidationError], problem: str, spec: StageSpec, key: str = ""
    ) -> PipelineValidationError:
        return cls(
            problem, stage=spec.name, key=key or None, source=self.source, line=spec.line(key)
        )

    def settings_defaults(self, defaults: Mapping[str, Any]) -> dict[str, Any]:
        """Every setting's default, the pipeline's where it gives one (checked per stage,
        so a bad one is reported against the stage it would configure)."""
        merged = {name: setting.default for name, setting in self.table.items()}
        for key, value in defaults.items():
            if key not in self.table:
                raise UnknownParameterError(
                    f"unknown pipeline default {key!r} (stage settings: {', '.join(self.table)})",
                    key=key,
                    source=self.source,
                    line=self.default_lines.get(key),
                )
            if value is not None:
                merged[key] = value
        return merged

    def known_settings(self, spec: StageSpec) -> None:
        """Refuse a setting the table does not declare, pointing parameters to params."""
        for key in spec.settings:
            if key not in self.table:
                where = (
                    f"under [stages.{spec.name}.params]"
                    if self.source is not None
                    else "in its params"
                )
                keys = ", ".join((*STRUCTURE_KEYS[:2], *self.table, *STRUCTURE_KEYS[2:]))
                raise self.error(
                    UnknownParameterError,
                    f"unknown setting {key!r} (settings: {keys}; the stage's own parameters "
                    f"go {where})",
                    spec,
                    key,
                )

    def setting_values(self, spec: StageSpec, defaults: Mapping[str, Any]) -> Mapping[str, Any]:
        """Every setting's parsed value for ``spec``; a bad one is located at the stage's
        key, or at the pipeline default it came from."""
        values: dict[str, Any] = {}
        for name, setting in self.table.items():
            written = spec.settings.get(name)
            try:
                values[name] = setting.check(defaults[name] if written is None else written)
            except PipelineValidationError as exc:
                raise exc.located(
                    stage=spec.name, source=self.source, line=self.setting_line(spec, name)
                ) from None
        return MappingProxyType(values)

    def setting_line(self, spec: StageSpec, name: str) -> int | None:
        """Where ``spec``'s value of setting ``name`` was written: its own key, else the
        pipeline default's, else the stage's table."""
        if spec.settings.get(name) is None and name in self.default_lines:
            return self.default_lines[name]
        return spec.line(name)

    def stage(
        self,
        spec: StageSpec,
        defaults: Mapping[str, Any],
        plugins: PluginManager,
        inputs: tuple[str, ...],
        outputs: list[str],
    ) -> PlannedStage:
        if not isinstance(spec.stage, str) or not spec.stage:
            raise self.error(
                ParameterValueError,
                f"stage must be a stage type's name, got {spec.stage!r}",
                spec,
                "stage",
            )
        try:
            definition = plugins.stage(spec.stage)
        except PipelineValidationError as exc:
            raise exc.located(
                stage=spec.name, source=self.source, line=spec.line("stage")
            ) from None
        except PluginConflictError as exc:
            raise self.error(PipelineValidationError, str(exc), spec, "stage") from exc
        settings = self.setting_values(spec, defaults)
        # The table checks the name's shape; which backends exist is the plugins' to say.
        backend_name = settings[BACKEND.name]
        try:
            backend = plugins.backend(backend_name)
        except PipelineValidationError as exc:
            raise exc.located(
                stage=spec.name, source=self.source, line=self.setting_line(spec, BACKEND.name)
            ) from None
        except (BackendUnavailableError, BackendProtocolError, PluginConflictError) as exc:
            raise PipelineValidationError(
                str(exc),
                stage=spec.name,
                key=BACKEND.name,
                source=self.source,
                line=self.setting_line(spec, BACKEND.name),
            ) from exc
        if not isinstance(spec.params, Mapping):
            raise self.error(
                ParameterValueError, "params must be a table of parameters", spec, "params"
            )
        try:
            params = definition.resolve_params(spec.params, stage=spec.name)
        except PipelineValidationError as exc:
            raise exc.located(
                stage=spec.name, source=self.source, line=spec.line(exc.key or "params")
            ) from None
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
