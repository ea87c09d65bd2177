"""Every public module's ``__all__``, pinned: an accidental export or removal fails here.

``pydotcompute`` is the user's vocabulary, ``pydotcompute.stage`` the stage author's,
``pydotcompute.backend`` the backend author's, ``pydotcompute.errors`` the whole error
vocabulary; the layer packages (runtime, compute, plugins, dataflow, pipeline, cli) are each
layer's interface to the layers above it.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pydotcompute
import pytest

PINNED: dict[str, set[str]] = {
    "pydotcompute": {
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
    },
    "pydotcompute.stage": {
        "BatchStage",
        "ComputeBackend",
        "Emitter",
        "MapStage",
        "EndOfStream",
        "Param",
        "REQUIRED",
        "Record",
        "RecordBatch",
        "RecordGroup",
        "StageDefinition",
        "StageError",
        "StagePorts",
        "StageSetup",
        "array_to_ids",
        "hookimpl",
        "ids_to_array",
        "new_record_ids",
        "payload_of",
        "record_count",
        "record_ids_for_rows",
        "root_id",
        "row_index",
        "row_indices",
        "run_stage",
        "sort_batch",
        "stack_records",
        "unchecked_builder",
    },
    "pydotcompute.backend": {
        "BackendCapabilities",
        "BackendProtocolError",
        "ComputeBackend",
        "ConformanceCase",
        "DeviceQueue",
        "NumpyBackend",
        "check_backend",
        "clip_bounds",
        "conformance_cases",
        "hookimpl",
        "to_host",
    },
    "pydotcompute.errors": {
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
    },
    "pydotcompute.runtime": {
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
        "NOTHING",
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
        "unchecked_builder",
        "uuids_from_ints",
        "ring_kernel",
        "wait_percentiles_us",
        "watch",
        "wire_round_trip",
    },
    "pydotcompute.compute": {
        "BACKEND_METHODS",
        "BackendCapabilities",
        "ComputeBackend",
        "ConformanceCase",
        "NumpyBackend",
        "check_backend",
        "clip_bounds",
        "conformance_cases",
        "to_host",
    },
    "pydotcompute.plugins": {
        "DISABLE_AUTOLOAD_ENV",
        "ENTRY_POINT_GROUP",
        "PROJECT_NAME",
        "PluginManager",
        "Provided",
        "available_backends",
        "available_stages",
        "create_plugin_manager",
        "get_backend",
        "get_plugin_manager",
        "get_stage",
        "hookimpl",
        "hookspec",
    },
    "pydotcompute.dataflow": {
        "MIN_SLICE_ROWS",
        "OFFLOAD_MIN_VALUES",
        "RECORD_COUNTS",
        "FusedStage",
        "MapStage",
        "member_count",
        "as_float_array",
        "BatchStage",
        "DeviceQueue",
        "Emitter",
        "EndOfStream",
        "Param",
        "REQUIRED",
        "RING_BYTES",
        "Record",
        "RecordBatch",
        "RecordGroup",
        "RingLink",
        "RingRows",
        "Sorted",
        "StageDefinition",
        "StageError",
        "StagePorts",
        "StageSetup",
        "array_to_ids",
        "count_records",
        "ids_to_array",
        "new_record_ids",
        "payload_of",
        "record_count",
        "record_ids_for_rows",
        "recover_ring_rows",
        "root_id",
        "row_index",
        "row_indices",
        "run_stage",
        "sort_batch",
        "stack_records",
        "usable_cores",
    },
    "pydotcompute.pipeline": {
        "AnyRun",
        "ENGINES",
        "RayPipelineRun",
        "RayUnavailableError",
        "import_ray",
        "open_run",
        "DEFAULT_METRICS_ADDRESS",
        "FEEDER",
        "INPUT_DTYPES",
        "MetricsServer",
        "MetricsSnapshot",
        "Pipeline",
        "PipelinePlan",
        "PipelineRun",
        "PlannedStage",
        "RELAXED_THRESHOLD",
        "RunMetrics",
        "STAGE_SETTINGS",
        "STRUCTURE_KEYS",
        "StageSetting",
        "StageSpec",
        "StageTelemetry",
        "TomlLines",
        "WAIT_BUCKETS_S",
        "WaitHistogram",
        "cast_problem",
        "input_dtype",
        "load_pipeline",
        "new_run_id",
        "parse_dtype",
        "parse_pipeline",
        "plan_pipeline",
        "records_from_array",
        "relaxed_gc",
        "require_metrics",
        "resource_warnings",
        "rows_that_fit",
        "settings_table",
        "settle_feeder",
        "stage_telemetry",
        "workers_limit",
    },
    "pydotcompute.cli": {
        "INPUT_FORMATS",
        "command_parser",
        "pipeline_dot",
        "pipeline_mermaid",
        "toml_value",
        "keep_freed_memory",
        "InputData",
        "InputFileError",
        "InputRecordError",
        "OUTPUT_FORMATS",
        "Output",
        "Progress",
        "ResultWriter",
        "STREAMED_FORMATS",
        "TableInput",
        "TablePiece",
        "TableWriter",
        "format_of",
        "main",
        "print_report",
        "read_input",
        "result_rows",
    },
}


@pytest.mark.parametrize("module", sorted(PINNED))
def test_public_names_are_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    assert set(mod.__all__) == PINNED[module]
    assert len(mod.__all__) == len(set(mod.__all__)), "a name is listed twice"
    for name in mod.__all__:
        assert getattr(mod, name) is not None


def test_the_package_face_stays_small() -> None:
    assert len(pydotcompute.__all__) <= 40


def test_every_public_module_is_pinned() -> None:
    """A new public module (no leading underscore) needs its names pinned here too."""
    public = {"pydotcompute"}
    for info in pkgutil.walk_packages(pydotcompute.__path__, "pydotcompute."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            public.add(info.name)
    assert public == set(PINNED)


def test_no_layer_module_repeats_its_folder_name() -> None:
    for info in pkgutil.walk_packages(pydotcompute.__path__, "pydotcompute."):
        *folders, leaf = info.name.split(".")
        assert not leaf.lstrip("_").startswith(folders[-1]), info.name


def test_error_hierarchy() -> None:
    from pydotcompute import errors as e

    for name in e.__all__:
        obj = getattr(e, name)
        assert isinstance(obj, type) and issubclass(obj, BaseException), name
        assert issubclass(obj, e.RingKernelError), name
    # StageError is a pipeline result (a record that failed), never raised.
    assert not issubclass(pydotcompute.StageError, BaseException)
    assert issubclass(e.QueueTimeoutError, TimeoutError)
    assert issubclass(e.QueueClosedError, TimeoutError)
    assert issubclass(e.MessageValidationError, ValueError)
    assert issubclass(e.MessageTypeError, TypeError)
    assert issubclass(e.KernelNotFoundError, LookupError)
    # Pipeline and plugin errors: catchable by the builtin a caller would reach for.
    assert issubclass(e.PipelineValidationError, ValueError)
    assert issubclass(e.UnknownStageError, LookupError)
    assert issubclass(e.UnknownBackendError, LookupError)
    assert issubclass(e.UnknownParameterError, e.PipelineValidationError)
    assert issubclass(e.BackendUnavailableError, RuntimeError)
    assert issubclass(e.StageFailedError, e.PipelineRunError)
    assert issubclass(e.DeviceFaultError, e.PipelineRunError)
    assert issubclass(e.DeviceFaultError, RuntimeError)
    # Misuse of a run and a run stopped from outside: RuntimeErrors, as they were before.
    assert issubclass(e.PipelineStateError, e.PipelineRunError)
    assert issubclass(e.PipelineStateError, RuntimeError)
    assert issubclass(e.PipelineStoppedError, e.PipelineRunError)
    assert issubclass(e.PipelineStoppedError, RuntimeError)
    assert issubclass(e.StreamProtocolError, e.PipelineRunError)
    assert issubclass(e.InputFileError, ValueError)
    assert issubclass(e.InvalidArgumentError, ValueError)
    assert issubclass(e.ArgumentTypeError, TypeError)


def test_bad_arguments_raise_the_vocabulary_and_stay_catchable_as_builtins() -> None:
    from pydotcompute import RestartPolicy, records_from_array
    from pydotcompute import errors as e

    with pytest.raises(e.InvalidArgumentError, match="max_restarts"):
        RestartPolicy(max_restarts=-1)
    with pytest.raises(e.InvalidArgumentError, match="batch_size"):
        list(records_from_array([[1.0]], batch_size=0))
    with pytest.raises(e.ArgumentTypeError, match="parentheses"):
        pydotcompute.ring_kernel(lambda ctx: None)  # type: ignore[arg-type]


def test_the_faces_hand_out_the_layers_objects() -> None:
    from pydotcompute import backend, dataflow, plugins, stage

    assert stage.hookimpl is backend.hookimpl is plugins.hookimpl
    assert stage.RecordBatch is pydotcompute.RecordBatch is dataflow.RecordBatch


REPO = Path(__file__).resolve().parents[3]


def _imports_of_private_names(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules, names = [node.module], [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            modules, names = [a.name for a in node.names], []
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] != "pydotcompute":
                continue
            private = [p for p in parts[1:] if p.startswith("_")]
            private += [n for n in names if n.startswith("_")]
            if private:
                found.append(f"{path}:{node.lineno}: {module} {private}")
    return found


def test_everything_outside_core_imports_public_names_only() -> None:
    """Tests, benchmarks, examples and the other packages use what a user could."""
    outside = [p for p in REPO.glob("**/*.py") if "packages/core/src" not in str(p)]
    outside = [p for p in outside if not {".nox", ".venv"} & set(p.parts)]
    assert len(outside) > 50  # the scan found the repository
    offenders = [line for path in outside for line in _imports_of_private_names(path)]
    assert offenders == []


def test_the_private_import_scan_catches_each_form(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from pydotcompute.runtime._queue import MessageQueue\n"
        "from pydotcompute.pipeline import _helper\n"
        "import pydotcompute._old\n"
        "from pydotcompute.stage import RecordBatch\n"
    )
    assert [line.split(":")[1] for line in _imports_of_private_names(bad)] == ["1", "2", "3"]
