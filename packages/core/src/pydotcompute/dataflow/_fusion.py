"""Stage fusion: a chain of one-to-one stages run by one worker, with no queue between.

A :class:`FusedStage` holds one :class:`BatchStage` per member stage and hands what
one member sends straight to the next, in the same call: no message crosses a queue,
and a RecordBatch stays in the backend's arrays (on its device) from member to member.
Each member keeps its own record counts, under ``"<stage>:records_in"`` and the like in
the worker's counts, so per-stage telemetry reads as if the stages ran apart; a record a
member fails on becomes a StageError named after that member and goes downstream at once.

A chain of :class:`MapStage` members that keep identity (all but the last) runs
per-message records as one stacked array from member to member: only the last member
builds messages, and the records a member fails on are rebuilt, as it received them, only
then. Such a chain runs each RecordBatch through every member in one call (the backend's
fused kernel, or each member's ``compute`` in turn): only the last member builds a batch,
and a batch the call fails on goes through the members one by one to name the member.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from ..compute import to_host
from ._batching import RecordGroup, count_records, sort_batch, stack_records
from ._definition import StageSetup
from ._loop import RECORD_COUNTS, BatchStage, Emitter, process_or_fail, run_stage
from ._map import HostSends, MapStage
from ._records import RecordBatch, StageError

if TYPE_CHECKING:
    from ..runtime import KernelContext
    from ._definition import KernelFunction, StageFactory

__all__ = ["FusedStage", "member_count"]

_IN, _OUT, _FAILED, _REJECTED = RECORD_COUNTS


def member_count(counts: Mapping[str, int], stage: str, name: str) -> int:
    """Member ``stage``'s record count ``name`` (one of RECORD_COUNTS) in a fused
    worker's ``counts``."""
    return counts.get(f"{stage}:{name}", 0)


class _MemberCounts(MutableMapping[str, int]):
    """One member's view of the worker's counts: its own keys, prefixed by its name."""

    def __init__(self, counts: MutableMapping[str, int], stage: str) -> None:
        self._counts = counts
        self._prefix = f"{stage}:"
        for name in RECORD_COUNTS:
            counts.setdefault(self._prefix + name, 0)

    def __getitem__(self, key: str) -> int:
        return self._counts[self._prefix + key]

    def __setitem__(self, key: str, value: int) -> None:
        self._counts[self._prefix + key] = value

    def __delitem__(self, key: str) -> None:
        del self._counts[self._prefix + key]

    def __iter__(self) -> Iterator[str]:
        n = len(self._prefix)
        return (k[n:] for k in self._counts if k.startswith(self._prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _Handoff(Emitter):
    """Where a member that is not the last sends: kept for the next member. StageErrors
    are set aside to go downstream; they are not the next member's input."""

    def __init__(self, out: Emitter, stage: str, counts: _MemberCounts) -> None:
        # Not Emitter.__init__: this emitter sends nowhere. send_error needs these.
        self.stage = stage
        self.kernel_id = out.kernel_id
        self.targets = ()
        self._counts = counts
        self.passed: list[Any] = []
        self.failed: list[StageError] = []

    async def send(self, msg: Any) -> None:
        if type(msg) is StageError:
            self.failed.append(msg)
            return
        self.passed.append(msg)
        self._counts[_OUT] += count_records((msg,))

    async def send_many(self, msgs: Sequence[Any]) -> None:
        # One pass to count, none per message: a per-message stage sends many at once.
        if any(type(msg) is StageError for msg in msgs):
            for msg in msgs:
                await self.send(msg)
            return
        self.passed.extend(msgs)
        self._counts[_OUT] += count_records(msgs)

    async def send_to_target(self, index: int, msg: Any) -> None:
        raise IndexError("a fused stage that is not the last one has no downstream targets")


class FusedStage(BatchStage):
    """The members of a fused chain, in order, as one batch stage."""

    def __init__(self, setup: StageSetup, members: Sequence[tuple[str, BatchStage]]) -> None:
        super().__init__(setup)
        self.members = tuple(members)
        maps = [
            stage
            for _, stage in self.members
            if isinstance(stage, MapStage) and type(stage).process is MapStage.process
        ]
        chain = len(maps) == len(self.members) and all(m.keeps_identity for m in maps[:-1])
        #: The members, when per-message records go member to member as rows (see the
        #: module's doc); else None.
        self.row_chain: tuple[MapStage, ...] | None = tuple(maps) if chain else None
        #: The whole chain's work on a batch as one call (see :meth:`_fuse`), for a row
        #: chain; else None.
        self.fused_compute = self._fuse(self.row_chain) if self.row_chain else None
        #: Whether that call treats each row on its own: every member does.
        self.row_wise = self.row_chain is not None and all(m.row_wise for m in self.row_chain)

    def _fuse(self, chain: tuple[MapStage, ...]) -> Callable[[Any], Any]:
        """The chain's work on a batch as one call: the backend's fusion of the members'
        operations (``fuse_ops``: one kernel on a device) where it has one, else each
        member's :meth:`~MapStage.compute` in turn. Either way no batch is built between
        members, and a row-wise chain's batch is cut into row slices once, not per member."""
        fuse = getattr(self.backend, "fuse_ops", None)
        ops = [stage.fused_op() for stage in chain]
        fused = None
        same_backend = all(stage.backend is self.backend for stage in chain)
        if fuse is not None and same_backend and all(op is not None for op in ops):
            fused = fuse(ops)
        return fused if fused is not None else _in_turn([stage.compute for stage in chain])

    async def process(self, batch: list[Any], out: Emitter) -> None:
        if self.row_chain is None:
            await self._from(0, batch, out)
            return
        parts = sort_batch(batch)
        if parts.records:
            groups, bad = stack_records(parts.records)
            for record, reason in bad:
                await self._fail(0, [record], reason, out)
            for group in groups:
                await self._chain(self.row_chain, group, out)
        if parts.batches:
            assert self.fused_compute is not None  # made for every row chain
            await self._fused_batches(self.fused_compute, parts.batches, out)

    async def _fused_batches(
        self, fused: Callable[[Any], Any], batches: Sequence[RecordBatch], out: Emitter
    ) -> None:
        """Each batch through the whole chain in one call (:meth:`_fuse`), counted per member as
        if each ran. A batch the fused call fails on goes through the members one by one
        instead, so that its StageErrors name the member that failed; a device fault ends
        the worker."""
        chain = self.row_chain
        assert chain is not None  # fused_compute is made from the row chain
        last = len(chain) - 1
        name = self.members[last][0]
        target = self._target(last, out, _MemberCounts(out._counts, name))
        # Results leaving for the host: queued on the device batch after batch before the
        # first copy is awaited (see MapStage.process).
        host = HostSends(chain[last], target) if getattr(target, "_to_host", False) else None
        try:
            for columnar in batches:
                try:
                    result = await chain[0].offload(fused, columnar.values, by_rows=self.row_wise)
                    produced = chain[last].batch_out(columnar, result)
                except Exception as exc:
                    chain[last]._end_on_device_fault(exc)
                    if host is not None:
                        await host.flush()  # what came before goes first
                    await self._from(0, [columnar], out)
                    continue
                n = len(columnar)
                for i, (member, _) in enumerate(self.members):
                    counts = _MemberCounts(out._counts, member)
                    counts[_IN] += n
                    if i < last:
                        counts[_OUT] += n
                if host is None:
                    await target.send(produced)
                else:
                    host.add(columnar, produced)
            if host is not None:
                await host.flush()
        finally:
            if host is not None:
                host.cancel()

    async def _chain(self, chain: tuple[MapStage, ...], group: RecordGroup, out: Emitter) -> None:
        """``group``'s rows through every member (a row chain), the last one's messages
        sent downstream."""
        n = len(group.records)
        values = group.values
        results: list[Any] = []
        last = len(chain) - 1
        produced: list[Any] = []
        for i, stage in enumerate(chain):
            counts = _MemberCounts(out._counts, self.members[i][0])
            counts[_IN] += n
            try:
                values = await stage.offload(stage.compute, values, by_rows=stage.row_wise)
                if i == last:
                    produced = stage.records_out(group, to_host(stage.backend, values))
            except Exception as exc:
                await self._fail(i, _input_of(chain, i, group, results), exc, out)
                return
            results.append(values)
            if i < last:
                counts[_OUT] += n
        await self._target(last, out, counts).send_many(produced)

    async def _fail(
        self, member: int, records: list[Any], error: BaseException | str, out: Emitter
    ) -> None:
        """StageErrors for ``records``, named after member ``member`` and counted as its
        failures, sent downstream at once."""
        target = self._target(member, out, _MemberCounts(out._counts, self.members[member][0]))
        await target.send_error(records, error)
        if isinstance(target, _Handoff):
            for failure in target.failed:
                await out.send(failure)

    async def finish(self, out: Emitter) -> None:
        await self._each(out, "finish")

    def timer(self) -> float | None:
        due = [t for _, stage in self.members if (t := stage.timer()) is not None]
        return min(due) if due else None

    async def on_timer(self, out: Emitter) -> None:
        await self._each(out, "on_timer")

    async def _from(self, start: int, data: list[Any], out: Emitter) -> None:
        """Members ``start`` onwards process ``data``, each what the one before sent."""
        for i in range(start, len(self.members)):
            name, stage = self.members[i]
            counts = _MemberCounts(out._counts, name)
            counts[_IN] += count_records(data)
            target = self._target(i, out, counts)
            await process_or_fail(stage, data, target)
            if not isinstance(target, _Handoff):
                return
            for failure in target.failed:
                await out.send(failure)
            data = target.passed
            if not data:
                return

    async def _each(self, out: Emitter, step: str) -> None:
        """Call ``step`` (finish, on_timer) on every member in order; what one sends goes
        through the members after it."""
        for i, (name, stage) in enumerate(self.members):
            target = self._target(i, out, _MemberCounts(out._counts, name))
            await getattr(stage, step)(target)
            if isinstance(target, _Handoff):
                for failure in target.failed:
                    await out.send(failure)
                if target.passed:
                    await self._from(i + 1, target.passed, out)

    def _target(self, i: int, out: Emitter, counts: _MemberCounts) -> Emitter:
        name = self.members[i][0]
        if i < len(self.members) - 1:
            return _Handoff(out, name, counts)
        last = copy.copy(out)  # sends downstream as the worker does, named and counted
        last.stage = name  # as the last member
        last._counts = counts
        return last

    @classmethod
    def fused_factory(cls, members: Sequence[tuple[str, Any, StageSetup]]) -> StageFactory:
        """A stage factory for the chain: ``members`` are (stage name, its ``map_stage``
        class, its own setup) in order; the setup handed to the factory is the worker's
        (its ports are the chain's)."""

        def factory(setup: StageSetup) -> KernelFunction:
            stage = cls(setup, [(name, build(own)) for name, build, own in members])

            async def kernel(ctx: KernelContext) -> None:
                await run_stage(ctx, setup, stage)

            kernel.__qualname__ = f"FusedStage.kernel[{setup.kernel_id}]"
            return kernel

        return factory


def _in_turn(computes: Sequence[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """One call doing each of ``computes`` on what the one before returned."""

    def chain(values: Any) -> Any:
        for compute in computes:
            values = compute(values)
        return values

    return chain


def _input_of(
    chain: tuple[MapStage, ...], member: int, group: RecordGroup, results: list[Any]
) -> list[Any]:
    """The messages member ``member`` of a row chain received for ``group``, built from
    the results before it (only when it failed, to name what it failed on)."""
    records = group.records
    try:
        for k in range(member):
            host = to_host(chain[k].backend, results[k])
            received = RecordGroup(records, host, group.columns, group.field)
            records = chain[k].records_out(received, host)
    except Exception:  # then name the records as the chain took them
        return group.records
    return records
