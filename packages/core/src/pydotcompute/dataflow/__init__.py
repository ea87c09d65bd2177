"""The dataflow layer: what moves between pipeline stages and how a stage is written:
records and record batches, stage definitions and parameters, ports, the stage loop and its
emitter, batching helpers, and the rings that keep device batches on the device.

Stage authors import from :mod:`pydotcompute.stage`.
"""

from __future__ import annotations

from ._batching import (
    RecordGroup,
    Sorted,
    as_float_array,
    count_records,
    record_count,
    sort_batch,
    stack_records,
)
from ._definition import (
    REQUIRED,
    Param,
    StageDefinition,
    StageSetup,
)
from ._fusion import FusedStage, member_count
from ._loop import (
    OFFLOAD_MIN_VALUES,
    RECORD_COUNTS,
    BatchStage,
    Emitter,
    run_stage,
)
from ._map import MapStage
from ._ports import (
    StagePorts,
)
from ._records import (
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
from ._rings import (
    RING_BYTES,
    DeviceQueue,
    RingLink,
    RingRows,
    recover_ring_rows,
)
from ._row_split import MIN_SLICE_ROWS, usable_cores

__all__ = [
    "MIN_SLICE_ROWS",
    "OFFLOAD_MIN_VALUES",
    "RECORD_COUNTS",
    "REQUIRED",
    "RING_BYTES",
    "BatchStage",
    "DeviceQueue",
    "Emitter",
    "EndOfStream",
    "FusedStage",
    "MapStage",
    "Param",
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
    "as_float_array",
    "count_records",
    "ids_to_array",
    "member_count",
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
]
