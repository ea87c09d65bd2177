"""pydotcompute: streaming compute pipelines built from ring kernels.

A ring kernel is a long-lived async actor with a bounded input and output queue. Define
one with :func:`ring_kernel`, its messages with :func:`message`, and run them in a
:class:`RingKernelRuntime`.
"""

from __future__ import annotations

from ._backend import ComputeBackend
from ._context import KernelContext
from ._dead_letters import DeadLetter, DeadLetterReason
from ._errors import (
    KernelAlreadyExistsError,
    KernelFailedError,
    KernelNotFoundError,
    KernelStateError,
    MessageTypeError,
    MessageValidationError,
    QueueClosedError,
    QueueFullError,
    QueueTimeoutError,
    RingKernelError,
)
from ._health import KernelHealth, RuntimeHealth
from ._hookspecs import hookimpl, hookspec
from ._kernel import KernelSpec, KernelState, ring_kernel
from ._message import RingKernelMessage, message
from ._queue import BackpressureStrategy, QueueStatistics
from ._report import KernelLeftovers, ShutdownReport
from ._routes import RouteMode
from ._runtime import RingKernelRuntime
from ._supervision import RestartPolicy
from ._telemetry import KernelTelemetry

__version__ = "0.1.0"

__all__ = [
    "BackpressureStrategy",
    "ComputeBackend",
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
    "QueueClosedError",
    "QueueFullError",
    "QueueStatistics",
    "QueueTimeoutError",
    "RestartPolicy",
    "RingKernelError",
    "RingKernelMessage",
    "RingKernelRuntime",
    "RouteMode",
    "RuntimeHealth",
    "ShutdownReport",
    "hookimpl",
    "hookspec",
    "message",
    "ring_kernel",
]
