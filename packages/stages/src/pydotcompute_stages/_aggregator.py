"""The ``aggregator`` stage: fan-in that gathers records into batches of N."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ._core import (
    BatchStage,
    Emitter,
    Param,
    RecordBatch,
    StageDefinition,
    StageSetup,
    ids_to_array,
    new_record_ids,
    root_id,
    sort_batch,
    stack_records,
    to_host,
)

__all__ = ["AGGREGATOR", "Aggregator"]

REDUCTIONS: Final = ("none", "sum", "mean")


@dataclasses.dataclass
class _Piece:
    """Held records of one shape, in arrival order: values in the backend's own arrays,
    ids, keys and counts on the host (numpy, as RecordBatch keeps them)."""

    values: Any  #: native to the stage's backend
    record_ids: npt.NDArray[np.uint64]
    keys: npt.NDArray[np.int64] | None
    counts: npt.NDArray[np.int64] | None
    columns: tuple[str, ...]
    field: str

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def fits(self, other: _Piece) -> bool:
        return (
            self.values.shape[1] == other.values.shape[1]
            and self.columns == other.columns
            and self.field == other.field
        )


def _concat(backend: Any, pieces: list[_Piece]) -> _Piece:
    if len(pieces) == 1:
        return pieces[0]
    first = pieces[0]
    keys = (
        np.concatenate([p.keys for p in pieces if p.keys is not None])
        if all(p.keys is not None for p in pieces)
        else None
    )
    counts = (
        np.concatenate(
            [p.counts if p.counts is not None else np.ones(len(p), np.int64) for p in pieces]
        )
        if any(p.counts is not None for p in pieces)
        else None
    )
    return _Piece(
        values=backend.concat_rows([p.values for p in pieces]),
        record_ids=np.concatenate([p.record_ids for p in pieces]),
        keys=keys,
        counts=counts,
        columns=first.columns,
        field=first.field,
    )


def _slice(piece: _Piece, start: int, stop: int) -> _Piece:
    return _Piece(
        values=piece.values[start:stop],
        record_ids=piece.record_ids[start:stop],
        keys=None if piece.keys is None else piece.keys[start:stop],
        counts=None if piece.counts is None else piece.counts[start:stop],
        columns=piece.columns,
        field=piece.field,
    )


class Aggregator(BatchStage):
    """Gather records from any number of upstream workers into RecordBatches of ``size``.

    A batch goes out as soon as ``size`` records are held, and a partial one once its
    oldest record has waited ``timeout`` seconds, or at end of stream. Records of a
    different width (or columns) than those held flush the held ones first.

    ``reduce="none"`` sends the records themselves (ids and keys kept). ``"sum"`` and
    ``"mean"`` send, per batch, one row per distinct key (ascending; the whole batch is
    one group when not every record has a key): the sum or the plain mean of the
    group's rows, computed with the backend's ``partition`` and ``segment_sum``, with
    ``keys`` the group keys, ``counts`` how many input records each row stands for,
    and fresh record ids.

    Takes per-message records (anything :func:`pydotcompute.payload_of` reads: values,
    normalized, stats, result) and RecordBatches. Always emits RecordBatches, so it
    also turns per-message traffic columnar.
    """

    def __init__(self, setup: StageSetup) -> None:
        super().__init__(setup)
        self.size: int = setup.params["size"]
        self.timeout: float = setup.params["timeout"]
        self.reduce: str = setup.params["reduce"]
        self._held: list[_Piece] = []
        self._count = 0
        self._oldest: float | None = None

    # -- the stage protocol ------------------------------------------------------------

    async def process(self, batch: list[Any], out: Emitter) -> None:
        parts = sort_batch(batch)
        pieces: list[_Piece] = []
        if parts.records:
            groups, bad = stack_records(parts.records)
            for record, reason in bad:
                await out.send_error([record], reason)
            for group in groups:
                keys = [getattr(r, "key", None) for r in group.records]
                pieces.append(
                    _Piece(
                        values=self.backend.asarray(group.values, None),
                        record_ids=ids_to_array([root_id(r) for r in group.records]),
                        keys=None
                        if any(k is None for k in keys)
                        else np.asarray(keys, dtype=np.int64),
                        counts=None,
                        columns=group.columns,
                        field=group.field,
                    )
                )
        for columnar in parts.batches:
            pieces.append(
                _Piece(
                    values=self.backend.asarray(columnar.values, None),
                    record_ids=columnar.record_ids,
                    keys=columnar.keys,
                    counts=columnar.counts,
                    columns=columnar.columns,
                    field=columnar.field,
                )
            )
        for piece in pieces:
            await self._hold(piece, out)

    async def finish(self, out: Emitter) -> None:
        await self._flush(out)

    def timer(self) -> float | None:
        if self._oldest is None:
            return None
        return max(0.0, self._oldest + self.timeout - time.monotonic())

    async def on_timer(self, out: Emitter) -> None:
        await self._flush(out)

    # -- holding and sending -----------------------------------------------------------

    async def _hold(self, piece: _Piece, out: Emitter) -> None:
        if not len(piece):
            return
        if self._held and not self._held[0].fits(piece):
            await self._flush(out)
        self._held.append(piece)
        self._count += len(piece)
        if self._oldest is None:
            self._oldest = time.monotonic()
        if self._count < self.size:
            return
        merged = _concat(self.backend, self._held)
        full = (len(merged) // self.size) * self.size
        rest = _slice(merged, full, len(merged))
        self._held = [rest] if len(rest) else []
        self._count = len(rest)
        self._oldest = time.monotonic() if len(rest) else None
        for start in range(0, full, self.size):
            await out.send(self._package(_slice(merged, start, start + self.size)))

    async def _flush(self, out: Emitter) -> None:
        if not self._held:
            return
        merged = _concat(self.backend, self._held)
        self._held, self._count, self._oldest = [], 0, None
        await out.send(self._package(merged))

    def _package(self, piece: _Piece) -> RecordBatch:
        if self.reduce == "none":
            return RecordBatch(
                values=piece.values,
                record_ids=piece.record_ids,
                keys=piece.keys,
                columns=piece.columns,
                field=piece.field,
                counts=piece.counts,
            )
        backend = self.backend
        n = len(piece)
        if piece.keys is None:
            group_keys: npt.NDArray[np.int64] | None = None
            inverse = np.zeros(n, dtype=np.int64)
            n_groups = 1
        else:
            group_keys, inverse = np.unique(piece.keys, return_inverse=True)
            n_groups = len(group_keys)
        counts, offsets, perm = backend.partition(backend.asarray(inverse, "int64"), n_groups)
        # The sums (or means) stay in the backend's arrays; the group sizes (one per key)
        # come to the host for the counts column.
        grouped = backend.take_rows(piece.values, perm)
        reduce = backend.segment_mean if self.reduce == "mean" else backend.segment_sum
        sums = reduce(grouped, offsets)
        counts = to_host(backend, counts).astype(np.int64, copy=False)
        if piece.counts is None:
            weights = counts
        else:
            host_offsets = to_host(backend, offsets)
            weights = _group_total(piece.counts[to_host(backend, perm)], host_offsets)
        return RecordBatch(
            values=sums,
            record_ids=new_record_ids(n_groups),
            keys=group_keys,
            columns=piece.columns,
            field=piece.field,
            counts=weights,
        )


def _group_total(values: npt.NDArray[np.int64], offsets: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    totals = np.concatenate([[0], np.cumsum(values, dtype=np.int64)])
    offs = np.asarray(offsets, dtype=np.int64)
    result: npt.NDArray[np.int64] = totals[offs[1:]] - totals[offs[:-1]]
    return result


AGGREGATOR = StageDefinition(
    name="aggregator",
    factory=Aggregator.factory,
    reads_rings=True,
    summary=(
        "fan-in: gather records into batches of N (flushed after a timeout); "
        "optional per-key sum/mean"
    ),
    params={
        "size": Param(int, default=64, minimum=1, doc="records per output batch"),
        "timeout": Param(
            float,
            default=0.1,
            minimum=0.0,
            doc="seconds a partial batch's oldest record may wait before the batch goes out",
        ),
        "reduce": Param(
            str,
            default="none",
            choices=REDUCTIONS,
            doc="none: send the records; sum/mean: one row per key of each batch",
        ),
    },
    accepts="any per-message record or result, and RecordBatch",
    emits="RecordBatch (records, or per-key sums/means with keys and counts)",
)
