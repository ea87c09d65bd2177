"""The runtime layer: ring kernels, their messages and wire form, bounded queues with
backpressure, routes, supervision, health, dead letters, telemetry and the shutdown report.

It imports nothing else of pydotcompute but :mod:`pydotcompute.errors`. Users import the
guide's names from :mod:`pydotcompute`; this namespace is the layer's interface to the
layers above it (and to tests).
"""

from __future__ import annotations

from ._builder import (
    unchecked_builder,
)
from ._context import (
    KernelContext,
)
from ._dead_letters import (
    DeadLetter,
    DeadLetterQueue,
    DeadLetterReason,
)
from ._health import (
    KernelHealth,
    RuntimeHealth,
    watch,
)
from ._ids import (
    new_message_id,
    uuids_from_ints,
)
from ._instance import (
    KernelInstance,
)
from ._kernel import (
    KernelSpec,
    KernelState,
    registered_kernel,
    ring_kernel,
)
from ._message import (
    RingKernelMessage,
    message,
    message_type_named,
)
from ._queue import (
    NOTHING,
    BackpressureStrategy,
    MessageQueue,
    Ordering,
    QueueEmpty,
    QueueStatistics,
)
from ._report import (
    KernelLeftovers,
    ShutdownReport,
)
from ._ring_runtime import (
    RingKernelRuntime,
)
from ._routes import (
    Route,
    RouteMode,
)
from ._supervision import (
    RestartPolicy,
    RestartTracker,
)
from ._telemetry import (
    KernelTelemetry,
    wait_percentiles_us,
)
from ._wire import (
    decode_message,
    encode_message,
    wire_round_trip,
)

__all__ = [
    "NOTHING",
    "BackpressureStrategy",
    "DeadLetter",
    "DeadLetterQueue",
    "DeadLetterReason",
    "KernelContext",
    "KernelHealth",
    "KernelInstance",
    "KernelLeftovers",
    "KernelSpec",
    "KernelState",
    "KernelTelemetry",
    "MessageQueue",
    "Ordering",
    "QueueEmpty",
    "QueueStatistics",
    "RestartPolicy",
    "RestartTracker",
    "RingKernelMessage",
    "RingKernelRuntime",
    "Route",
    "RouteMode",
    "RuntimeHealth",
    "ShutdownReport",
    "decode_message",
    "encode_message",
    "message",
    "message_type_named",
    "new_message_id",
    "registered_kernel",
    "ring_kernel",
    "unchecked_builder",
    "uuids_from_ints",
    "wait_percentiles_us",
    "watch",
    "wire_round_trip",
]
