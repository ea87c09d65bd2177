from __future__ import annotations

import pydotcompute

EXPECTED = {
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
    "RingLink",
    "RingRows",
    "RingKernelError",
    "RingKernelMessage",
    "RingKernelRuntime",
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
}


def test_public_names_are_pinned() -> None:
    assert set(pydotcompute.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(pydotcompute, name) is not None


def test_error_hierarchy() -> None:
    p = pydotcompute
    for name in EXPECTED:
        obj = getattr(p, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, p.RingKernelError), name
    # StageError is a pipeline result (a record that failed), never raised.
    assert not issubclass(p.StageError, BaseException)
    assert issubclass(p.QueueTimeoutError, TimeoutError)
    assert issubclass(p.QueueClosedError, TimeoutError)
    assert issubclass(p.MessageValidationError, ValueError)
    assert issubclass(p.MessageTypeError, TypeError)
    assert issubclass(p.KernelNotFoundError, LookupError)
    # Pipeline and plugin errors: catchable by the builtin a caller would reach for.
    assert issubclass(p.PipelineValidationError, ValueError)
    assert issubclass(p.UnknownStageError, LookupError)
    assert issubclass(p.UnknownBackendError, LookupError)
    assert issubclass(p.UnknownParameterError, p.PipelineValidationError)
    assert issubclass(p.BackendUnavailableError, RuntimeError)
    assert issubclass(p.StageFailedError, p.PipelineRunError)
    assert issubclass(p.InputFileError, ValueError)
