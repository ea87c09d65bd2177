"""The pydotcompute names the stages build on, imported in one place.

All come from pydotcompute's public API; this module pins which ones the stages use,
so a rename in core is one edit here.
"""

from __future__ import annotations

from pydotcompute import RecordBatch
from pydotcompute.backend import ComputeBackend, to_host
from pydotcompute.stage import (
    BatchStage,
    Emitter,
    MapStage,
    Param,
    RecordGroup,
    StageDefinition,
    StageSetup,
    ids_to_array,
    new_record_ids,
    record_count,
    root_id,
    sort_batch,
    stack_records,
    unchecked_builder,
)

__all__ = [
    "BatchStage",
    "ComputeBackend",
    "Emitter",
    "MapStage",
    "Param",
    "RecordBatch",
    "RecordGroup",
    "StageDefinition",
    "StageSetup",
    "ids_to_array",
    "new_record_ids",
    "record_count",
    "root_id",
    "sort_batch",
    "stack_records",
    "to_host",
    "unchecked_builder",
]
