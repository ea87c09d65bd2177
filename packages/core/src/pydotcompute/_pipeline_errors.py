"""Errors of plugins, pipeline definitions and pipeline runs.

Every class derives from :class:`RingKernelError`. Validation errors carry where the
problem is (``stage``; ``source`` and ``line`` for a TOML file) and put it at the front
of the message: ``pipeline.toml:12: stage 'compute': unknown parameter 'stat' ...``.
"""

from __future__ import annotations

from ._errors import RingKernelError

__all__ = [
    "BackendUnavailableError",
    "DanglingInputError",
    "ParameterValueError",
    "PipelineCycleError",
    "PipelineRunError",
    "PipelineValidationError",
    "PluginConflictError",
    "PluginError",
    "PluginLoadError",
    "StageFailedError",
    "UnknownBackendError",
    "UnknownParameterError",
    "UnknownStageError",
]


# -- plugins ---------------------------------------------------------------------------


class PluginError(RingKernelError):
    """Base of the errors about installed plugins."""


class PluginLoadError(PluginError):
    """A plugin could not be imported or registered, or one of its hooks failed.

    The plugin author's fault (or a broken install): the message names the
    distribution and entry point. The plugin is left out; every other plugin still
    works. ``pydotcompute stages`` lists these.
    """

    def __init__(self, distribution: str, entry_point: str, reason: str) -> None:
        self.distribution = distribution
        self.entry_point = entry_point
        self.reason = reason
        super().__init__(
            f"plugin {entry_point!r} from distribution {distribution!r} is broken and was "
            f"skipped: {reason}"
        )


class PluginConflictError(PluginError):
    """Two plugins register a stage or backend under the same name.

    The installer's fault: uninstall one of the named distributions. The name is
    unusable until then; everything else still works.
    """

    def __init__(self, kind: str, name: str, providers: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.providers = list(providers)
        super().__init__(
            f"{kind} {name!r} is registered by more than one plugin: "
            f"{' and '.join(providers)}; uninstall one of them"
        )


class BackendUnavailableError(PluginError, RuntimeError):
    """A compute backend is installed but could not be created on this machine
    (its factory raised: a missing GPU or library). The original error is ``__cause__``.
    Pick another backend, or install what the message names."""


# -- pipeline definitions --------------------------------------------------------------


class PipelineValidationError(RingKernelError, ValueError):
    """A pipeline definition is wrong; found before anything is launched.

    The author of the pipeline's fault. ``stage`` names the stage (or None when the
    problem is the whole pipeline); ``key`` the offending setting or parameter
    (``"params.NAME"`` for a parameter), when there is one; ``source`` and ``line``
    locate it in a TOML file. ``problem`` is the message without the location.
    """

    def __init__(
        self,
        problem: str,
        *,
        stage: str | None = None,
        key: str | None = None,
        source: str | None = None,
        line: int | None = None,
    ) -> None:
        self.problem = problem
        self.stage = stage
        self.key = key
        self.source = source
        self.line = line
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.source is not None:
            where = f"{self.source}:{self.line}: " if self.line is not None else f"{self.source}: "
        stage = f"stage {self.stage!r}: " if self.stage is not None else ""
        return f"{where}{stage}{self.problem}"

    def located(
        self, *, stage: str | None = None, source: str | None, line: int | None
    ) -> PipelineValidationError:
        """A copy of this error (same class and cause) with the stage and location set."""
        clone = _clone(self)
        if stage is not None:
            clone.stage = stage
        clone.source = source
        clone.line = line
        clone.args = (clone._format(),)
        return clone


def _clone(err: PipelineValidationError) -> PipelineValidationError:
    clone: PipelineValidationError = err.__class__.__new__(err.__class__)
    clone.__dict__.update(err.__dict__)
    clone.__cause__ = err.__cause__
    return clone


class UnknownStageError(PipelineValidationError, LookupError):
    """No installed plugin provides a stage of that name. The message lists the
    installed stages and their distributions: fix the name or install the plugin."""


class UnknownBackendError(PipelineValidationError, LookupError):
    """No installed plugin provides a compute backend of that name. The message lists
    the installed backends: fix the name or install the plugin."""


class UnknownParameterError(PipelineValidationError):
    """A stage was given a parameter (or setting) it does not declare. The message
    lists the known ones."""


class ParameterValueError(PipelineValidationError):
    """A parameter or setting has a value of the wrong type or out of range, or a
    required one is missing."""


class PipelineCycleError(PipelineValidationError):
    """The stages' inputs form a cycle; pipelines are acyclic. The message spells the
    cycle out."""


class DanglingInputError(PipelineValidationError):
    """A stage names an input that is no stage of the pipeline."""


# -- pipeline runs ---------------------------------------------------------------------


class PipelineRunError(RingKernelError):
    """Base of the errors raised while a pipeline runs."""


class StageFailedError(PipelineRunError):
    """A stage's kernel failed (its loop raised), so the run cannot complete.

    The stage's fault: ``stage`` and ``kernel_id`` name it; ``error`` is the original
    exception (also ``__cause__``). Errors on individual records do not raise this:
    they come out of the pipeline as ``StageError`` results.
    """

    def __init__(self, stage: str, kernel_id: str, error: BaseException | None) -> None:
        self.stage = stage
        self.kernel_id = kernel_id
        self.error = error
        super().__init__(
            f"stage {stage!r} failed (kernel {kernel_id!r}): {error!r}; the run was stopped"
        )
