"""What a stage author imports: everything needed to write a pipeline stage and ship it as a
plugin.

A stage is a :class:`StageDefinition` (name, parameters, a factory) returned from a
``@hookimpl``-marked ``pydotcompute_register_stages`` in a module listed under the
``pydotcompute`` entry-point group. Most stages subclass :class:`BatchStage`: the loop, end
of stream and error records are handled for them, and they see records or
:class:`RecordBatch` es and send results through an :class:`Emitter`.

Array work goes through the stage's backend (``self.backend``, a :class:`ComputeBackend`),
so the stage runs on every backend, a GPU one included, where a batch's ``values`` are
device arrays: ``clip``, ``minmax_normalize``, the row reductions (``row_sum``,
``row_mean``, ``row_min``, ``row_max``, ``row_std``, ``row_var``, ``row_range``),
``segment_sum``/``segment_mean``, ``partition``, ``take_rows``, ``concat_rows``,
``stack_columns``, ``asarray`` and ``to_numpy`` (their policies in
:mod:`pydotcompute.backend`). Besides those, treat ``values`` as opaque: read ``.shape``
and ``.dtype``, slice rows (``values[a:b]``), but call no numpy function on it and never
write into it; a received message may be shared with other stages, so build a new
message instead of changing one. Ids, keys and counts are always numpy, on the host.
A stage that builds one small message per record builds it with an
:func:`unchecked_builder` from values already checked (the input's ids and keys, numbers
it computed), at a third of the class's cost.
"""

from __future__ import annotations

from .compute import ComputeBackend
from .dataflow import (
    REQUIRED,
    BatchStage,
    Emitter,
    EndOfStream,
    MapStage,
    Param,
    Record,
    RecordBatch,
    RecordGroup,
    StageDefinition,
    StageError,
    StagePorts,
    StageSetup,
    array_to_ids,
    ids_to_array,
    new_record_ids,
    payload_of,
    record_count,
    record_ids_for_rows,
    root_id,
    row_index,
    row_indices,
    run_stage,
    sort_batch,
    stack_records,
)
from .plugins import hookimpl
from .runtime import unchecked_builder

__all__ = [
    "REQUIRED",
    "BatchStage",
    "ComputeBackend",
    "Emitter",
    "EndOfStream",
    "MapStage",
    "Param",
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
]
