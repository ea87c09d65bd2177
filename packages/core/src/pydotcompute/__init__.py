"""pydotcompute: streaming compute pipelines built from ring kernels.

A ring kernel is a long-lived async actor with a bounded input and output queue. Define
one with :func:`ring_kernel`, its messages with :func:`message`, and run them in a
:class:`RingKernelRuntime`.
"""

from __future__ import annotations

from ._backend import ComputeBackend, to_host
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
from ._io import InputFileError
from ._kernel import KernelSpec, KernelState, ring_kernel
from ._message import RingKernelMessage, message
from ._numpy_backend import NumpyBackend
from ._pipeline import Pipeline
from ._pipeline_batching import RecordGroup, record_count, sort_batch, stack_records
from ._pipeline_errors import (
    BackendUnavailableError,
    DanglingInputError,
    ParameterValueError,
    PipelineCycleError,
    PipelineRunError,
    PipelineValidationError,
    PluginConflictError,
    PluginError,
    PluginLoadError,
    StageFailedError,
    UnknownBackendError,
    UnknownParameterError,
    UnknownStageError,
)
from ._pipeline_feed import new_run_id, records_from_array
from ._pipeline_gc import relaxed_gc
from ._pipeline_loop import BatchStage, Emitter, run_stage
from ._pipeline_plan import PipelinePlan, PlannedStage, StageSpec
from ._pipeline_ports import StagePorts
from ._pipeline_records import (
    EndOfStream,
    Record,
    RecordBatch,
    StageError,
    array_to_ids,
    ids_to_array,
    new_record_ids,
    payload_of,
    record_ids_for_rows,
    root_id,
    row_index,
    row_indices,
)
from ._pipeline_ring import DeviceQueue, RingLink, RingRows
from ._pipeline_run import PipelineRun
from ._pipeline_stage import REQUIRED, Param, StageDefinition, StageSetup
from ._pipeline_telemetry import StageTelemetry
from ._plugins import (
    PluginManager,
    available_backends,
    available_stages,
    create_plugin_manager,
    get_backend,
    get_plugin_manager,
    get_stage,
)
from ._queue import BackpressureStrategy, QueueStatistics
from ._report import KernelLeftovers, ShutdownReport
from ._routes import RouteMode
from ._runtime import RingKernelRuntime
from ._supervision import RestartPolicy
from ._telemetry import KernelTelemetry

__version__ = "0.1.0"

__all__ = [
    "REQUIRED",
    "BackendUnavailableError",
    "BackpressureStrategy",
    "BatchStage",
    "ComputeBackend",
    "DanglingInputError",
    "DeadLetter",
    "DeadLetterReason",
    "DeviceQueue",
    "Emitter",
    "EndOfStream",
    "InputFileError",
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
    "NumpyBackend",
    "Param",
    "ParameterValueError",
    "Pipeline",
    "PipelineCycleError",
    "PipelinePlan",
    "PipelineRun",
    "PipelineRunError",
    "PipelineValidationError",
    "PlannedStage",
    "PluginConflictError",
    "PluginError",
    "PluginLoadError",
    "PluginManager",
    "QueueClosedError",
    "QueueFullError",
    "QueueStatistics",
    "QueueTimeoutError",
    "Record",
    "RecordBatch",
    "RecordGroup",
    "RestartPolicy",
    "RingKernelError",
    "RingKernelMessage",
    "RingKernelRuntime",
    "RingLink",
    "RingRows",
    "RouteMode",
    "RuntimeHealth",
    "ShutdownReport",
    "StageDefinition",
    "StageError",
    "StageFailedError",
    "StagePorts",
    "StageSetup",
    "StageSpec",
    "StageTelemetry",
    "UnknownBackendError",
    "UnknownParameterError",
    "UnknownStageError",
    "array_to_ids",
    "available_backends",
    "available_stages",
    "create_plugin_manager",
    "get_backend",
    "get_plugin_manager",
    "get_stage",
    "hookimpl",
    "hookspec",
    "ids_to_array",
    "message",
    "new_record_ids",
    "new_run_id",
    "payload_of",
    "record_count",
    "record_ids_for_rows",
    "records_from_array",
    "relaxed_gc",
    "ring_kernel",
    "root_id",
    "row_index",
    "row_indices",
    "run_stage",
    "sort_batch",
    "stack_records",
    "to_host",
]
