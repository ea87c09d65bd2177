"""Declarative pipelines: a graph of stages, built in Python or read from TOML.

>>> pipeline = (
...     Pipeline("guide")
...     .add_stage("preprocess")
...     .add_stage("compute", params={"stats": ["mean", "std"]})
... )
>>> # async for result in pipeline.run(inputs): ...

A stage's ``inputs`` default to the stage added just before it (so a chain needs no
wiring); ``inputs=[]`` makes a source, fed by the pipeline; several inputs make a
fan-in, and a stage named by several others' inputs fans out (every downstream stage
gets every output; among one stage's ``workers`` they are dealt in turn).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from os import PathLike
from typing import Any

from ..errors import InvalidArgumentError, ParameterValueError, PipelineValidationError
from ..plugins import PluginManager, get_plugin_manager
from ..runtime import RingKernelRuntime
from ._engine import open_run
from ._metrics_server import DEFAULT_METRICS_ADDRESS
from ._plan import ADDRESS_KEY, DTYPE_KEY, ENGINE_KEY, PipelinePlan, StageSpec, plan_pipeline
from ._run import PipelineRun
from ._settings import STAGE_SETTINGS

__all__ = ["Pipeline"]


class Pipeline:
    """A pipeline definition: stages, their settings and parameters, and their inputs.

    Building it checks nothing; :meth:`validate` checks everything (stage types,
    backends, settings, parameters, inputs, cycles) and returns the plan that
    :meth:`open` and :meth:`run` launch. ``defaults`` change the stage settings'
    defaults for every stage: any setting of :data:`~pydotcompute.pipeline.STAGE_SETTINGS`
    (``pydotcompute settings`` lists them).

    ``dtype`` is the float dtype input values are read as: ``"float16"``,
    ``"float32"`` or ``"float64"``; None (the default): text input stays float64 and
    an array keeps its own float dtype. It describes the input, not a stage, so it is
    the pipeline's own attribute; for convenience ``defaults`` may carry it too (as
    ``[pipeline]`` in a file does). :meth:`validate` checks it into
    :attr:`PipelinePlan.dtype`; feed arrays with ``records_from_array(x,
    dtype=plan.dtype)``.
    """

    def __init__(
        self,
        name: str = "pipeline",
        *,
        dtype: str | None = None,
        defaults: Mapping[str, Any] | None = None,
        source: str | None = None,
        default_lines: Mapping[str, int] | None = None,
        engine: str | None = None,
        address: str | None = None,
    ) -> None:
        self.name = name
        self.defaults: dict[str, Any] = dict(defaults or {})
        self.source = source
        self._default_lines = dict(default_lines or {})
        self._specs: list[StageSpec] = []
        #: Problems a reader found in the source, reported by :meth:`validate` with
        #: the rest (the TOML reader keeps reading past an unknown key).
        self.source_problems: list[PipelineValidationError] = []
        written = self.defaults.pop(DTYPE_KEY, None)
        if dtype is not None and written is not None and written != dtype:
            self.source_problems.append(
                ParameterValueError(
                    f"dtype is given twice: {dtype!r}, and {written!r} in defaults",
                    key=DTYPE_KEY,
                    source=source,
                    line=self._default_lines.get(DTYPE_KEY),
                )
            )
        #: The input dtype as written (checked by :meth:`validate`); None: unset.
        self.dtype: Any = dtype if dtype is not None else written
        # Like dtype, the engine describes the pipeline, not a stage ([pipeline] engine).
        written_engine = self.defaults.pop(ENGINE_KEY, None)
        #: The engine as written, "local" or "ray" (checked by :meth:`validate`); None:
        #: local.
        self.engine: Any = engine if engine is not None else written_engine
        written_address = self.defaults.pop(ADDRESS_KEY, None)
        #: Engine ray: the cluster to join ("auto", "HOST:PORT"); None: a local Ray
        #: starts and stops with each run.
        self.address: Any = address if address is not None else written_address

    # -- building ----------------------------------------------------------------------

    def add_stage(
        self,
        name: str,
        stage: str | None = None,
        *,
        inputs: Sequence[str] | None = None,
        params: Mapping[str, Any] | None = None,
        **settings: Any,
    ) -> Pipeline:
        """Add stage ``name`` running the registered stage ``stage`` (default: ``name``).

        ``inputs``: upstream stage names (None: the stage added just before; ``[]``: a
        source). ``params``: the stage's own parameters. ``settings``: stage settings by
        name (below); one left out or None takes the pipeline's default. Returns ``self``.

        Stage settings:
        """
        self._specs.append(
            StageSpec(
                name=name,
                stage=name if stage is None else stage,
                inputs=None if inputs is None else _as_names(inputs),
                settings=settings,
                params=dict(params or {}),
            )
        )
        return self

    def add_spec(self, spec: StageSpec) -> Pipeline:
        """Add a prepared :class:`StageSpec` (the TOML reader uses this). Returns ``self``."""
        self._specs.append(spec)
        return self

    @property
    def stages(self) -> tuple[StageSpec, ...]:
        """The stages as written, in definition order."""
        return tuple(self._specs)

    @classmethod
    def from_toml(cls, path: str | PathLike[str]) -> Pipeline:
        """Read a pipeline file; see :mod:`pydotcompute.pipeline` for the format.

        Raises:
            PipelineValidationError: the file is not valid TOML, or its ``[pipeline]``
                or ``stages`` is not a table (with the file name and line); the rest
                is reported by :meth:`validate`.
            OSError: the file cannot be read.
        """
        from ._toml import load_pipeline

        return load_pipeline(path)

    @classmethod
    def from_toml_text(cls, text: str, *, source: str = "<string>") -> Pipeline:
        """Like :meth:`from_toml`, from a string; ``source`` names it in errors."""
        from ._toml import parse_pipeline

        return parse_pipeline(text, source=source)

    # -- checking and running ----------------------------------------------------------

    def validate(self, plugins: PluginManager | None = None) -> PipelinePlan:
        """Check the whole definition against the installed plugins.

        Every problem is reported at once; a plan far beyond this machine warns (see
        :func:`~pydotcompute.pipeline.plan_pipeline`).

        Raises:
            PipelineValidationError: the one problem found, naming the stage (and the
                file and line for TOML): UnknownStageError, UnknownBackendError,
                UnknownParameterError, ParameterValueError, DanglingInputError,
                PipelineCycleError; or, for several, PipelineValidationErrors holding
                each, sorted by line.
        """
        return plan_pipeline(
            self.name,
            self._specs,
            self.defaults,
            plugins or get_plugin_manager(),
            dtype=self.dtype,
            engine=self.engine,
            address=self.address,
            source=self.source,
            default_lines=self._default_lines,
            found=self.source_problems,
        )

    def open(
        self,
        *,
        runtime: RingKernelRuntime | None = None,
        plugins: PluginManager | None = None,
        prefix: str = "",
        relax_gc: bool = False,
        wire_check: bool = False,
        metrics_port: int | None = None,
        metrics_address: str = DEFAULT_METRICS_ADDRESS,
    ) -> PipelineRun:
        """Validate and return a run to use as ``async with pipeline.open() as run``.

        Without ``runtime`` the run creates its own and shuts it down at the end; with
        one, its kernels (ids prefixed by ``prefix``) join it and are terminated at the
        end. ``relax_gc=True`` runs the garbage collector less often while the run
        lasts (process-wide; see :func:`pydotcompute.relaxed_gc`): worth it for
        per-message traffic. ``wire_check=True`` is a test mode: every message between
        workers goes through its wire form, as it would between processes (see
        :class:`~pydotcompute.PipelineRun`). ``metrics_port``: serve the run's
        Prometheus metrics on ``metrics_address`` (127.0.0.1) at that port while it
        lasts (0: a free one; ``run.metrics_url`` says where); needs the
        ``pydotcompute[metrics]`` extra.

        Raises:
            PipelineValidationError: see :meth:`validate`.
        """
        if self.engine == "ray" and metrics_port is not None:
            raise InvalidArgumentError(
                "metrics_port is the local engine's: a run on engine 'ray' serves no "
                "metrics (its telemetry is in run.telemetry() and the report)"
            )
        if self.engine == "ray":  # else validate() says what is wrong with it
            # A RayPipelineRun has PipelineRun's interface but not its runtime, so the
            # annotation above (the local engine's, which callers type against) is not
            # its type: open_run() is the typed way to either engine.
            return open_run(  # type: ignore[return-value]
                self.validate(plugins),
                runtime=runtime,
                prefix=prefix,
                relax_gc=relax_gc,
                wire_check=wire_check,
            )
        return PipelineRun(
            self.validate(plugins),
            runtime,
            prefix=prefix,
            relax_gc=relax_gc,
            wire_check=wire_check,
            metrics_port=metrics_port,
            metrics_address=metrics_address,
        )

    async def run(
        self,
        inputs: Iterable[Any] | AsyncIterable[Any],
        *,
        runtime: RingKernelRuntime | None = None,
        plugins: PluginManager | None = None,
        relax_gc: bool = False,
        wire_check: bool = False,
        metrics_port: int | None = None,
        metrics_address: str = DEFAULT_METRICS_ADDRESS,
    ) -> AsyncIterator[Any]:
        """Validate, launch, feed ``inputs`` (records and/or RecordBatches), and yield the
        results as they complete, each with its root id(s); then shut down.

        ``relax_gc``, ``wire_check`` and the metrics: see :meth:`open`. To stop early,
        close the generator (``async with contextlib.aclosing(pipeline.run(inputs)) as
        results:``) so the run shuts down at once, or use :meth:`open`.

        Raises:
            PipelineValidationError: before anything launches.
            StageFailedError: a stage's kernel failed.
        """
        async with self.open(
            runtime=runtime,
            plugins=plugins,
            relax_gc=relax_gc,
            wire_check=wire_check,
            metrics_port=metrics_port,
            metrics_address=metrics_address,
        ) as run:
            async for result in run.process(inputs):
                yield result

    def __repr__(self) -> str:
        names = ", ".join(s.name for s in self._specs)
        return f"<Pipeline {self.name!r}: {names}>"


# help(Pipeline.add_stage) lists the settings from the table, so it cannot drift from it.
if Pipeline.add_stage.__doc__ is not None:  # None under python -OO
    Pipeline.add_stage.__doc__ += "".join(
        f"\n        - ``{s.name}`` (default {s.default!r}): {s.doc}"
        for s in STAGE_SETTINGS.values()
    )


def _as_names(inputs: Sequence[str] | str) -> tuple[str, ...]:
    if isinstance(inputs, str):
        return (inputs,)
    if not isinstance(inputs, Sequence):
        raise ParameterValueError(f"inputs must be a list of stage names, got {inputs!r}")
    return tuple(inputs)
