"""The ``distributor`` stage: fan-out to the workers downstream, in turn or by key."""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from ._core import (
    BatchStage,
    Emitter,
    Param,
    RecordBatch,
    StageDefinition,
    StageSetup,
    root_id,
    sort_batch,
    to_host,
)

__all__ = ["DISTRIBUTOR", "Distributor"]

MODES: Final = ("round_robin", "key")


def _is_key(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


class Distributor(BatchStage):
    """Deal records out among every worker of every downstream stage (``targets``).

    ``mode="round_robin"``: each message goes whole to the next target in turn (a
    RecordBatch is not split). ``mode="key"``: each record goes to target
    ``key % len(targets)`` (Python modulo, so negative keys work), so equal keys always
    meet the same worker; a RecordBatch is split by its ``keys`` with the backend's
    stable ``partition`` (order within a target kept). Per-message records take their
    key from the field named by ``key_field``.

    A record without a usable key (or a RecordBatch without ``keys``) in key mode comes
    out as a StageError. With no downstream stage it passes everything through.
    Emits what it takes: per-message records as they came, RecordBatches (or
    sub-batches of them).
    """

    def __init__(self, setup: StageSetup) -> None:
        super().__init__(setup)
        self.mode: str = setup.params["mode"]
        self.key_field: str = setup.params["key_field"]
        self._next = 0

    async def process(self, batch: list[Any], out: Emitter) -> None:
        n = len(out.targets)
        if n == 0:
            await out.send_many(batch)
            return
        parts = sort_batch(batch)
        if self.mode == "round_robin":
            for msg in batch:
                await out.send_to_target(self._next, msg)
                self._next = (self._next + 1) % n
            return
        if parts.records:
            await self._records_by_key(parts.records, n, out)
        for columnar in parts.batches:
            await self._batch_by_key(columnar, n, out)

    async def _records_by_key(self, records: list[Any], n: int, out: Emitter) -> None:
        keyed: list[Any] = []
        keys: list[int] = []
        for record in records:
            key: Any = getattr(record, self.key_field, None)
            if _is_key(key):
                keyed.append(record)
                keys.append(int(key))
            else:
                await out.send_error(
                    [record],
                    f"KeyError: record has no integer {self.key_field!r} to distribute by "
                    f"(got {key!r})",
                )
        if not keyed:
            return
        backend = self.backend
        _, offsets, perm = backend.partition(backend.asarray(keys, "int64"), n)
        offsets = backend.to_numpy(offsets).tolist()
        order = backend.to_numpy(perm).tolist()
        for target in range(n):
            for i in order[offsets[target] : offsets[target + 1]]:
                await out.send_to_target(target, keyed[i])

    async def _batch_by_key(self, batch: RecordBatch, n: int, out: Emitter) -> None:
        if batch.keys is None:
            await out.send_error(
                [batch], "KeyError: RecordBatch has no keys to distribute by (set keys=...)"
            )
            return
        backend = self.backend
        counts, offsets, perm = backend.partition(backend.asarray(batch.keys, "int64"), n)
        counts = to_host(backend, counts).tolist()
        offsets = to_host(backend, offsets).tolist()
        # One gather puts each target's rows together, where they live (a batch on the
        # device is split there); each target gets a slice of them.
        grouped = backend.take_rows(batch.values, perm)
        host_perm = to_host(backend, perm)
        for target in range(n):
            if counts[target]:
                start, stop = offsets[target], offsets[target + 1]
                index = host_perm[start:stop]
                part = RecordBatch(
                    values=grouped[start:stop],
                    record_ids=batch.record_ids[index],
                    keys=batch.keys[index],
                    columns=batch.columns,
                    field=batch.field,
                    counts=None if batch.counts is None else batch.counts[index],
                    correlation_id=root_id(batch),
                )
                await out.send_to_target(target, part)


DISTRIBUTOR = StageDefinition(
    name="distributor",
    factory=Distributor.factory,
    reads_rings=True,
    holds_records=False,  # it routes each batch as it comes
    summary="fan-out among the downstream workers: round robin, or by key (key % workers)",
    params={
        "mode": Param(str, default="round_robin", choices=MODES, doc="round_robin or key"),
        "key_field": Param(
            str, default="key", doc="per-message records: the field holding the key"
        ),
    },
    accepts="per-message records and RecordBatch (key mode: with keys)",
    emits="what it takes: records as they came; RecordBatches split by key in key mode",
)
