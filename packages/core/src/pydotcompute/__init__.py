"""pydotcompute: streaming compute pipelines built from ring kernels.

A ring kernel is a long-lived async actor with a bounded input and output queue. Define
one with :func:`ring_kernel`, its messages with :func:`message`, and run them in a
:class:`RingKernelRuntime`; or describe stages in a :class:`Pipeline` and let it run them.

This namespace is the user's vocabulary: the guide's names, the errors to catch, pipelines,
and what telemetry and reports hand back. Stage authors import from
:mod:`pydotcompute.stage`, backend authors from :mod:`pydotcompute.backend`, and the whole
error vocabulary is :mod:`pydotcompute.errors`.
"""

from __future__ import annotations

from .dataflow import Record, RecordBatch, StageError
from .errors import (
    KernelAlreadyExistsError,
    KernelFailedError,
    KernelNotFoundError,
    KernelStateError,
    MessageTypeError,
    MessageValidationError,
    PipelineRunError,
    PipelineValidationError,
    PluginError,
    QueueClosedError,
    QueueFullError,
    QueueTimeoutError,
    RingKernelError,
    StageFailedError,
)
from .pipeline import Pipeline, PipelineRun, StageTelemetry, records_from_array
from .runtime import (
    BackpressureStrategy,
    DeadLetter,
    DeadLetterReason,
    KernelContext,
    KernelHealth,
    KernelLeftovers,
    KernelSpec,
    KernelState,
    KernelTelemetry,
    QueueStatistics,
    RestartPolicy,
    RingKernelMessage,
    RingKernelRuntime,
    RouteMode,
    RuntimeHealth,
    ShutdownReport,
    message,
    ring_kernel,
)

__version__ = "0.1.0"

__all__ = [
    "BackpressureStrategy",
    "DeadLetter",
    "DeadLetterReason",
    "KernelAlreadyExistsError",
    "KernelContext",
    "KernelFailedError",
    "KernelHealth",
    "KernelLeftovers",
    "KernelNotFoundError",
    "KernelSpec",
    "KernelState",
    "KernelStateError",
    "KernelTelemetry",
    "MessageTypeError",
    "MessageValidationError",
    "Pipeline",
    "PipelineRun",
    "PipelineRunError",
    "PipelineValidationError",
    "PluginError",
    "QueueClosedError",
    "QueueFullError",
    "QueueStatistics",
    "QueueTimeoutError",
    "Record",
    "RecordBatch",
    "RestartPolicy",
    "RingKernelError",
    "RingKernelMessage",
    "RingKernelRuntime",
    "RouteMode",
    "RuntimeHealth",
    "ShutdownReport",
    "StageError",
    "StageFailedError",
    "StageTelemetry",
    "message",
    "records_from_array",
    "ring_kernel",
]
