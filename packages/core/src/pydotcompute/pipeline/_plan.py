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
from typing import TYPE_CHECKING, Any, Final

from ..errors import (
    BackendUnavailableError,
    DanglingInputError,
    ParameterValueError,
    PipelineCycleError,
    PipelineValidationError,
    PluginConflictError,
    UnknownParameterError,
)
from ..runtime import BackpressureStrategy, RestartPolicy

if TYPE_CHECKING:
    from ..compute import ComputeBackend
    from ..dataflow import StageDefinition
    from ..plugins import PluginManager

__all__ = [
    "DEFAULT_SETTINGS",
    "SETTINGS",
    "PipelinePlan",
    "PlannedStage",
    "StageSpec",
    "plan_pipeline",
]

#: Per-stage settings and their defaults (a pipeline may change the defaults).
DEFAULT_SETTINGS: Final[Mapping[str, Any]] = {
    "workers": 1,
    "queue_size": 1024,
    "backpressure": "block",
    "batch_size": 1024,
    "backend": "numpy",
    # A RestartPolicy, "never", or a table of RestartPolicy's fields.
    "restart": "never",
    # Rows each device ring into a worker holds (one ring per upstream worker), or
    # "auto": as many as fill RING_BYTES. Rings carry batches between stages that share
    # a device backend (see pydotcompute.dataflow._rings).
    "ring_rows": "auto",
}
_RESTART_FIELDS: Final = tuple(f.name for f in dataclasses.fields(RestartPolicy))
#: Every key a stage entry may hold besides its parameters.
SETTINGS: Final = ("stage", "inputs", *DEFAULT_SETTINGS, "params")


@dataclasses.dataclass(frozen=True)
class StageSpec:
    """One stage as the pipeline's author wrote it, before validation.

    ``inputs`` None means "the stage defined just before" (the first stage: none, so it
    is fed by the pipeline). Settings left None take the pipeline's defaults.
    ``locations`` maps keys (``""`` for the stage's own table, ``"params.NAME"`` for a
    parameter) to their line in the source file, when there is one.
    """

    name: str
    stage: str
    inputs: tuple[str, ...] | None = None
    workers: Any = None
    queue_size: Any = None
    backpressure: Any = None
    batch_size: Any = None
    backend: Any = None
    restart: Any = None
    ring_rows: Any = None
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
    """A validated stage: everything needed to launch its workers."""

    name: str
    definition: StageDefinition
    params: Mapping[str, Any]
    backend: ComputeBackend
    backend_name: str
    workers: int
    queue_size: int
    backpressure: BackpressureStrategy
    batch_size: int
    restart: RestartPolicy  #: each worker kernel's restart policy
    ring_rows: int | None  #: rows of each device ring into a worker; None: fill RING_BYTES
    inputs: tuple[str, ...]  #: upstream stage names (empty: fed by the pipeline)
    outputs: tuple[str, ...]  #: downstream stage names (empty: a sink)
    kernel_ids: tuple[str, ...]  #: one per worker

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
) -> PipelinePlan:
    """Validate ``specs`` and return the plan.

    Raises:
        PipelineValidationError: (or a subclass) the first problem found, located.
    """
    checker = _Checker(source, default_lines or {})
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
    """Builds located errors and checks settings."""

    def __init__(self, source: str | None, default_lines: Mapping[str, int]) -> None:
        self.source = source
        self.default_lines = default_lines

    def error(
        self, cls: type[PipelineValidationError], problem: str, spec: StageSpec, key: str = ""
    ) -> PipelineValidationError:
        return cls(
            problem, stage=spec.name, key=key or None, source=self.source, line=spec.line(key)
        )

    def settings_defaults(self, defaults: Mapping[str, Any]) -> dict[str, Any]:
        merged = dict(DEFAULT_SETTINGS)
        for key, value in defaults.items():
            if key not in DEFAULT_SETTINGS:
                known = ", ".join(DEFAULT_SETTINGS)
                raise UnknownParameterError(
                    f"unknown pipeline default {key!r} (settings with defaults: {known})",
                    key=key,
                    source=self.source,
                    line=self.default_lines.get(key),
                )
            merged[key] = value
        return merged

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
        settings = {key: getattr(spec, key) for key in DEFAULT_SETTINGS}
        for key, value in settings.items():
            if value is None:
                settings[key] = defaults[key]
        workers = self._positive_int(spec, "workers", settings["workers"])
        queue_size = self._positive_int(spec, "queue_size", settings["queue_size"])
        batch_size = self._positive_int(spec, "batch_size", settings["batch_size"])
        ring_rows = (
            None
            if settings["ring_rows"] == "auto"
            else self._positive_int(spec, "ring_rows", settings["ring_rows"], "or 'auto'")
        )
        try:
            backpressure = BackpressureStrategy.parse(settings["backpressure"])
        except ValueError as exc:
            raise self.error(
                ParameterValueError, f"backpressure: {exc}", spec, "backpressure"
            ) from None
        restart = self._restart_policy(spec, settings["restart"])
        backend_name = settings["backend"]
        if not isinstance(backend_name, str) or not backend_name:
            raise self.error(
                ParameterValueError,
                f"backend must be a backend's name, got {backend_name!r}",
                spec,
                "backend",
            )
        try:
            backend = plugins.backend(backend_name)
        except PipelineValidationError as exc:
            raise exc.located(
                stage=spec.name, source=self.source, line=spec.line("backend")
            ) from None
        except (BackendUnavailableError, PluginConflictError) as exc:
            raise self.error(PipelineValidationError, str(exc), spec, "backend") from exc
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
        kernel_ids = (
            (spec.name,) if workers == 1 else tuple(f"{spec.name}_{i}" for i in range(workers))
        )
        return PlannedStage(
            name=spec.name,
            definition=definition,
            params=params,
            backend=backend,
            backend_name=backend_name,
            workers=workers,
            queue_size=queue_size,
            backpressure=backpressure,
            batch_size=batch_size,
            restart=restart,
            ring_rows=ring_rows,
            inputs=inputs,
            outputs=tuple(outputs),
            kernel_ids=kernel_ids,
        )

    def _restart_policy(self, spec: StageSpec, value: Any) -> RestartPolicy:
        if isinstance(value, RestartPolicy):
            return value
        if value == "never":
            return RestartPolicy.never()
        if not isinstance(value, Mapping):
            raise self.error(
                ParameterValueError,
                f"restart must be 'never' or a table of {', '.join(_RESTART_FIELDS)}; "
                f"got {value!r}",
                spec,
                "restart",
            )
        unknown = sorted(set(value) - set(_RESTART_FIELDS))
        if unknown:
            raise self.error(
                UnknownParameterError,
                f"restart: unknown field {unknown[0]!r} (fields: {', '.join(_RESTART_FIELDS)})",
                spec,
                "restart",
            )
        try:
            return RestartPolicy(**value)
        except (TypeError, ValueError) as exc:
            raise self.error(ParameterValueError, f"restart: {exc}", spec, "restart") from None

    def _positive_int(self, spec: StageSpec, key: str, value: Any, alternative: str = "") -> int:
        if type(value) is not int or value < 1:
            expected = f"a positive integer {alternative}".rstrip()
            raise self.error(
                ParameterValueError, f"{key} must be {expected}, got {value!r}", spec, key
            )
        return value
