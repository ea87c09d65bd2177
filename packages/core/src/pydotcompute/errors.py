"""The error vocabulary of pydotcompute: everything raised on purpose derives from
:class:`RingKernelError`, and each docstring says whose fault it is and what to do.

Pipeline validation errors carry where the problem is (``stage``; ``source`` and ``line``
for a TOML file) and put it at the front of the message:
``pipeline.toml:12: stage 'compute': unknown parameter 'stat' ...``.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ArgumentTypeError",
    "BackendProtocolError",
    "BackendUnavailableError",
    "DanglingInputError",
    "DeviceFaultError",
    "InputFileError",
    "InvalidArgumentError",
    "KernelAlreadyExistsError",
    "KernelFailedError",
    "KernelNotFoundError",
    "KernelStateError",
    "MessageTypeError",
    "MessageValidationError",
    "MetricsEndpointError",
    "ParameterValueError",
    "PipelineCycleError",
    "PipelineResourceWarning",
    "PipelineRunError",
    "PipelineStateError",
    "PipelineStoppedError",
    "PipelineValidationError",
    "PipelineValidationErrors",
    "PluginConflictError",
    "PluginError",
    "PluginLoadError",
    "QueueClosedError",
    "QueueFullError",
    "QueueTimeoutError",
    "RingKernelError",
    "StageFailedError",
    "StreamProtocolError",
    "UnknownBackendError",
    "UnknownParameterError",
    "UnknownStageError",
]


class RingKernelError(Exception):
    """Base of every error pydotcompute raises on purpose."""


class KernelNotFoundError(RingKernelError, LookupError):
    """No kernel with that id is registered or launched.

    The caller's fault: check the id (the message lists the known ones).
    """


class KernelAlreadyExistsError(RingKernelError):
    """A kernel with that id is already launched in this runtime.

    The caller's fault: launch the same function under a new id instead.
    """


class KernelStateError(RingKernelError):
    """The operation is not allowed in the kernel's current lifecycle state.

    The caller's fault: e.g. activating a terminated kernel, or sending to a kernel
    that is shutting down. The message names the kernel, its state and the operation.
    """


class KernelFailedError(RingKernelError):
    """The kernel's function raised; the original exception is ``__cause__``.

    The kernel's fault: its traceback was logged to the ``pydotcompute`` logger.
    """


class QueueFullError(RingKernelError):
    """A queue with the REJECT strategy was full, so the message was not accepted.

    Expected under load: the caller decides whether to retry, slow down or drop. For
    a bulk send, ``accepted`` says how many of the messages went in before the refusal
    (they are the first ones, in order).
    """

    def __init__(self, *args: object, accepted: int = 0) -> None:
        super().__init__(*args)
        self.accepted = accepted


class QueueTimeoutError(RingKernelError, TimeoutError):
    """Waiting on a queue (for a message, or for room) took longer than the timeout.

    A ``TimeoutError`` (and so ``asyncio.TimeoutError``): loops that catch either keep working.
    """


class QueueClosedError(RingKernelError, TimeoutError):
    """The queue no longer accepts or hands out messages: its kernel is stopping.

    ``ctx.receive`` raises it once termination is requested. It is a ``TimeoutError``
    so that loops which catch ``asyncio.TimeoutError`` around ``receive`` (as the
    guide's do) read it as "nothing more is coming", flush what they hold, and reach
    their ``should_terminate`` check. Nothing is lost: whatever is still queued is
    counted and returned in the shutdown report.
    """


class MessageValidationError(RingKernelError, ValueError):
    """A message is malformed: a field out of range, bad wire bytes, an unknown type.

    The sender's fault: the message names the message type and the field.
    """


class MessageTypeError(MessageValidationError, TypeError):
    """A message is of the wrong type for where it was sent (or not a message at all).

    The sender's fault: the message names the expected and the actual type.
    """


# -- calls -----------------------------------------------------------------------------


class InvalidArgumentError(RingKernelError, ValueError):
    """A function or method was given a value it cannot use: out of range, of the wrong
    shape, or naming nothing known.

    The caller's fault: the message names the argument and what it accepts. Catchable
    as ``ValueError``.
    """


class ArgumentTypeError(RingKernelError, TypeError):
    """A function or method was given a value of a type it does not take.

    The caller's fault: the message names the argument and the type it takes.
    Catchable as ``TypeError``.
    """


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


class BackendProtocolError(PluginError, TypeError):
    """An object offered as a compute backend does not satisfy :class:`ComputeBackend`.

    The backend author's fault: the message names the backend and each missing or
    wrong member (a method, ``name``, or ``capabilities``). Implement what it lists;
    ``pydotcompute.backend.conformance_cases`` then checks the numbers.
    """


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


class PipelineValidationErrors(PipelineValidationError):
    """Several problems in one pipeline definition, all found in one pass.

    The author of the pipeline's fault: fix each one. ``errors`` holds each problem as
    its own located :class:`PipelineValidationError` (with its ``stage``, ``key``,
    ``source`` and ``line``), sorted by line; the message lists them one per line.
    Raised only for two or more: a single problem is raised as itself.
    """

    def __init__(self, errors: Sequence[PipelineValidationError], *, source: str | None) -> None:
        self.errors = tuple(sorted(errors, key=_by_line))
        super().__init__(
            f"{len(self.errors)} problems:\n" + "\n".join(str(e) for e in self.errors),
            source=source,
        )


def _by_line(err: PipelineValidationError) -> tuple[bool, int]:
    # Problems without a line (the whole pipeline's) after the located ones; sorted()
    # is stable, so ties keep the order they were found in.
    return (err.line is None, err.line or 0)


class PipelineResourceWarning(RingKernelError, UserWarning):
    """A valid pipeline asks for far more than this machine has (workers against CPU
    cores, queue capacity against memory): it would run, slowly or out of memory.

    The pipeline author's call: lower the named stage's setting, or ignore the warning
    on a machine that really has the room. ``stage`` and ``key`` name the setting.
    """

    def __init__(self, problem: str, *, stage: str, key: str, source: str | None = None) -> None:
        self.problem = problem
        self.stage = stage
        self.key = key
        self.source = source
        where = f"{source}: " if source is not None else ""
        super().__init__(f"{where}stage {stage!r}: {key}: {problem}")


# -- pipeline runs ---------------------------------------------------------------------


class PipelineRunError(RingKernelError):
    """Base of the errors raised while a pipeline runs."""


class PipelineStateError(PipelineRunError, RuntimeError):
    """A run was used out of turn: its runtime read before ``async with`` started it,
    input sent after :meth:`~pydotcompute.PipelineRun.end_input`, or ``process()``
    called a second time.

    The caller's fault: the message says which. A run is fed once; open another run to
    feed more. A ``RuntimeError`` too, as these were before they had a class of their own.
    """


class PipelineStoppedError(PipelineRunError, RuntimeError):
    """A stage's worker stopped without failing while the run still needed it: it was
    terminated from outside (the runtime it shares was shut down, or someone terminated
    the kernel) or its function returned before it was asked to.

    Whoever stopped it: the message names the workers that are no longer active. The run
    is stopped; what the workers held is in the runtime's shutdown report.
    """

    def __init__(self, problem: str, kernels: dict[str, str]) -> None:
        self.kernels = dict(kernels)  #: kernel id -> its lifecycle state
        states = ", ".join(f"{kid!r} ({state})" for kid, state in self.kernels.items())
        super().__init__(f"{problem}; workers no longer active: {states or 'none found'}")


class MetricsEndpointError(PipelineRunError, RuntimeError):
    """A run's Prometheus metrics cannot be served: ``prometheus-client`` (the
    ``pydotcompute[metrics]`` extra) is not installed, or the address cannot be bound
    (the port is in use, or the address is not one of this machine's).

    The caller's fault: the message names the address and the reason. Install the
    extra, or pick another port (0 lets the system choose a free one). Nothing was
    launched: the endpoint is bound before any worker starts.
    """


class StreamProtocolError(PipelineRunError):
    """A worker received an end-of-stream marker from a kernel that is not one of its
    producers, so it cannot tell when its input is complete.

    The fault of whatever sent the marker (a custom stage or kernel that forwards
    ``EndOfStream`` messages, or hand-made ports): the message names the worker, the
    sender and the producers it expects. Stage code never needs to send markers: the
    stage loop does.
    """


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


class DeviceFaultError(PipelineRunError, RuntimeError):
    """The device a stage computes on failed (a CUDA error such as an illegal memory
    access), not its data.

    Such a fault is sticky: every later launch on that device fails too, so a stage that
    meets one ends its worker, and the run stops with :class:`StageFailedError` naming
    the stage (this error as its ``error``) instead of turning every later batch into a
    ``StageError``. Backends raise it (or say so through ``device_fault``, see
    :mod:`pydotcompute.backend`); the message names the device and the original error.
    """


# -- input files ------------------------------------------------------------------------


class InputFileError(RingKernelError, ValueError):
    """An input file cannot be read at all (missing, unknown format, no good record).

    The user's fault: the message names the file (and line, where there is one).
    """

    def __init__(self, path: str, problem: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {problem}")
