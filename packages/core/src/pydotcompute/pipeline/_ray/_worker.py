"""One stage worker in a Ray actor: the same kernel as on the local engine, in a runtime
of its own, taking micro-batches and handing back what they produced.

The actor hosts a :class:`~pydotcompute.RingKernelRuntime` running the worker kernel the
stage's own factory builds (a fused chain's, for a fused group), under the stage's
restart policy: a crash in the stage's code is restarted and dead-lettered there, as on
the local engine. Only the kernel's context changes: its sends to the workers
downstream (other actors) land in an :class:`_Outbox`, per downstream worker, instead of
their queues.

A :meth:`StageWorker.push` call is atomic: it puts one micro-batch into the kernel's
queue, runs the actor's event loop until the kernel holds nothing, and returns what it
sent, one list per downstream worker (``num_returns`` splits them into object refs the
driver passes on unopened), plus a :class:`WorkerStats`. Nothing a micro-batch
produced leaves the actor before the call returns, so an actor that dies mid-call has
passed none of it on: the driver replays the call on a new actor, or reports it.
:meth:`StageWorker.recompute` makes a call's outputs again when the node that held them
was lost, without counting the call twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from ...dataflow import EndOfStream, FusedStage, StagePorts, StageSetup, count_records
from ...errors import KernelNotFoundError
from ...runtime import (
    BackpressureStrategy,
    DeadLetter,
    KernelContext,
    KernelState,
    KernelTelemetry,
    RingKernelRuntime,
    ShutdownReport,
)
from .._plan import PlannedStage
from .._settings import NUM_CPUS, OFFLOAD, THREADS

__all__ = ["DRIVER", "StageWorker", "WorkerSpec", "WorkerStats"]

#: The producer the driver's end marker names, and a sink's one output "target".
DRIVER: Final = "<driver>"
# While a micro-batch is worked on, the actor looks this often whether the kernel is done
# (after a first look at once: short batches finish within one turn of the loop).
_SETTLE_POLL_S = 0.0002


@dataclasses.dataclass(frozen=True)
class WorkerSpec:
    """What one actor is built from: picklable, so a replacement is built the same way."""

    kernel_id: str
    worker: int  #: this worker's index among its stage's workers
    stages: tuple[PlannedStage, ...]  #: the group it runs: one stage, or a fused chain
    downstream: tuple[tuple[str, ...], ...]  #: per downstream stage, its worker ids
    capacity: int  #: room in the kernel's queue: the most messages one call brings

    @property
    def targets(self) -> tuple[str, ...]:
        """Where outputs go, in the order :meth:`StageWorker.push` returns them."""
        return tuple(kid for group in self.downstream for kid in group) or (DRIVER,)


@dataclasses.dataclass(frozen=True)
class WorkerStats:
    """What one call did, besides its outputs."""

    telemetry: KernelTelemetry  #: the kernel's telemetry after the call
    sent: tuple[tuple[int, int], ...]  #: (messages, records) per target, as returned
    error: BaseException | None  #: the kernel failed for good (past its restart limit)
    ended: bool  #: the kernel sent its end-of-stream markers
    #: Where the round-robin to each downstream stage stood when the call began: a call
    #: computed again from here deals its outputs as the call did.
    dealt_from: tuple[int, ...] = ()


class _Outbox:
    """The sends of one actor's kernel, per downstream worker, until the call returns.

    Routing follows the local engine's: every output goes to each downstream stage, to
    one of its workers in turn; a sink's go to the driver."""

    def __init__(self, downstream: tuple[tuple[str, ...], ...]) -> None:
        self._downstream = downstream
        self._next = [0] * len(downstream)
        self.lists: dict[str, list[Any]] = {
            kid: [] for kid in (tuple(k for g in downstream for k in g) or (DRIVER,))
        }
        self.sent = 0  #: messages sent, all calls together
        self.ended: set[str] = set()  #: targets this worker's end marker went to

    def put(self, target: str, msg: Any) -> None:
        box = self.lists.get(target)
        if box is None:
            raise KernelNotFoundError(
                f"no downstream worker {target!r} (known: {list(self.lists)})"
            )
        box.append(msg)
        self.sent += 1

    def deal(self, msg: Any) -> None:
        if not self._downstream:
            self.put(DRIVER, msg)
            return
        for i, group in enumerate(self._downstream):
            index = self._next[i]
            self._next[i] = (index + 1) % len(group)
            self.put(group[index], msg)

    @property
    def position(self) -> tuple[int, ...]:
        """Where the round-robin to each downstream stage stands."""
        return tuple(self._next)

    @position.setter
    def position(self, value: Sequence[int]) -> None:
        self._next = list(value)

    def take(self) -> list[list[Any]]:
        taken = list(self.lists.values())
        for kid in self.lists:
            self.lists[kid] = []
        return taken

    @property
    def all_ended(self) -> bool:
        return self.ended >= set(self.lists)


class _ActorContext:
    """The kernel's context in an actor: receives as usual, sends into the outbox.

    Everything but the sends is the runtime's own context's, so the stage loop, its
    counters, restarts and dead letters work unchanged."""

    __slots__ = ("_box", "_ctx")

    def __init__(self, ctx: KernelContext, box: _Outbox) -> None:
        self._ctx = ctx
        self._box = box

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)

    async def send(self, msg: Any) -> None:
        self._box.deal(msg)

    async def send_many(self, msgs: Sequence[Any]) -> None:
        for msg in msgs:
            self._box.deal(msg)

    async def send_to(self, kernel_id: str, msg: Any) -> None:
        self._box.put(kernel_id, msg)

    async def send_control(self, msg: Any, to: str | None = None) -> None:
        # End markers stay here: the driver ends each downstream worker itself once
        # every worker feeding it has ended.
        if type(msg) is EndOfStream:
            self._box.ended.add(DRIVER if to is None else to)
            self._box.sent += 1  # counted as sent, as the local engine counts it
        elif to is None:
            self._box.deal(msg)
        else:
            self._box.put(to, msg)


class StageWorker:
    """The actor (``ray.remote(StageWorker)``): one worker of one stage (or fused chain).

    A plain, single-threaded actor (no coroutine methods, or Ray would run it on an
    event loop of its own): its calls run one at a time, in the order the driver made
    them, each driving the worker's own event loop until its work is done; between
    calls the kernel waits."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self._loop = asyncio.new_event_loop()
        self._core = self._loop.run_until_complete(_WorkerCore.start(spec))

    def push(self, *chunks: Sequence[Any]) -> tuple[Any, ...]:
        """Work on the messages of ``chunks``, in order; return the outputs per target
        (see :attr:`WorkerSpec.targets`) and then a :class:`WorkerStats`."""
        msgs = [msg for chunk in chunks for msg in chunk]
        return self._loop.run_until_complete(self._core.push(msgs))

    def recompute(self, dealt_from: Sequence[int], *chunks: Sequence[Any]) -> tuple[Any, ...]:
        """:meth:`push` once more for a call whose outputs were lost (with the node that
        held them): the same messages, dealt from where that call began; the worker's
        telemetry leaves this call out, as the call was counted when first made."""
        msgs = [msg for chunk in chunks for msg in chunk]
        return self._loop.run_until_complete(self._core.recompute(dealt_from, msgs))

    def end(self) -> tuple[Any, ...]:
        """Every producer has ended: end the kernel's input, let it finish, and return
        what it sent meanwhile (as :meth:`push`)."""
        return self._loop.run_until_complete(self._core.end())

    def close(self) -> tuple[ShutdownReport, list[DeadLetter], KernelTelemetry]:
        """Stop the kernel: its shutdown report, dead letters and final telemetry."""
        return self._loop.run_until_complete(self._core.close())

    def node_id(self) -> str:
        """The Ray node this actor runs on (for placement checks)."""
        import ray

        return str(ray.get_runtime_context().get_node_id())


class _WorkerCore:
    """The worker's runtime and outbox, on the actor's event loop."""

    def __init__(self, spec: WorkerSpec, runtime: RingKernelRuntime, box: _Outbox) -> None:
        self.spec = spec
        self._runtime = runtime
        self._box = box
        self._recomputed: KernelTelemetry | None = None  #: what recomputing added, summed

    @classmethod
    async def start(cls, spec: WorkerSpec) -> _WorkerCore:
        head = spec.stages[0]
        runtime = RingKernelRuntime(enable_telemetry=True)
        setup = StageSetup(
            stage=head.name,
            kernel_id=spec.kernel_id,
            worker=spec.worker,
            workers=head.workers,
            params=head.params,
            backend=head.backend,
            batch_size=head.batch_size,
            offload=head.setting(OFFLOAD),
            threads=_threads(head),
            # Not routed: the stage loop addresses each downstream worker, and the
            # context above catches the sends. Outputs leave as numpy (another process).
            ports=StagePorts(
                downstream=spec.downstream, routed=False, producers=(DRIVER,), native_out=False
            ),
        )
        if len(spec.stages) == 1:
            kernel = head.definition.factory(setup)
        else:
            members = []
            for stage in spec.stages:
                assert stage.definition.map_stage is not None  # fused: map stages only
                own = dataclasses.replace(
                    setup,
                    stage=stage.name,
                    params=stage.params,
                    offload=stage.setting(OFFLOAD),
                    threads=_threads(stage),
                )
                members.append((stage.name, stage.definition.map_stage, own))
            kernel = FusedStage.fused_factory(members)(setup)
        box = _Outbox(spec.downstream)

        async def in_actor(ctx: KernelContext) -> None:
            await kernel(_ActorContext(ctx, box))  # type: ignore[arg-type]

        await runtime.launch(
            spec.kernel_id,
            in_actor,
            # The driver keeps the stage's queue (and its backpressure); this one only
            # ever holds the call being worked on.
            queue_size=spec.capacity,
            backpressure=BackpressureStrategy.BLOCK,
            ordering="fifo",
            restart=head.restart,
        )
        await runtime.activate(spec.kernel_id)
        return cls(spec, runtime, box)

    async def push(self, msgs: list[Any]) -> tuple[Any, ...]:
        kid = self.spec.kernel_id
        runtime = self._runtime
        dealt_from = self._box.position
        if runtime.state(kid) is not KernelState.FAILED:
            await runtime.send_many(kid, msgs)
            await self._settle(lambda: runtime.idle(kid))
        return self._reply(dealt_from)

    async def recompute(self, dealt_from: Sequence[int], msgs: list[Any]) -> tuple[Any, ...]:
        before, position = self._raw_telemetry(), self._box.position
        self._box.position = dealt_from
        try:
            outputs = await self.push(msgs)
        finally:
            self._box.position = position
        added = telemetry_difference(self._raw_telemetry(), before)
        self._recomputed = (
            added if self._recomputed is None else merge_telemetry([self._recomputed, added])
        )
        stats: WorkerStats = outputs[-1]
        return (*outputs[:-1], dataclasses.replace(stats, telemetry=self._telemetry()))

    async def end(self) -> tuple[Any, ...]:
        kid = self.spec.kernel_id
        runtime = self._runtime
        if runtime.state(kid) is not KernelState.FAILED:
            await runtime.send_control(kid, EndOfStream(source=DRIVER), sender=DRIVER)
            box = self._box
            await self._settle(lambda: box.all_ended and runtime.idle(kid))
        return self._reply()

    async def _settle(self, done: Callable[[], bool]) -> None:
        """Run the loop until ``done()`` or the kernel failed for good."""
        kid = self.spec.kernel_id
        runtime = self._runtime
        await asyncio.sleep(0)
        # Polled: "the kernel holds nothing" is a state of the runtime, not an event.
        while not done() and runtime.state(kid) is not KernelState.FAILED:  # noqa: ASYNC110
            await asyncio.sleep(_SETTLE_POLL_S)

    def _reply(self, dealt_from: tuple[int, ...] = ()) -> tuple[Any, ...]:
        kid = self.spec.kernel_id
        outputs = self._box.take()
        failed = self._runtime.state(kid) is KernelState.FAILED
        stats = WorkerStats(
            telemetry=self._telemetry(),
            sent=tuple((len(out), count_records(out)) for out in outputs),
            error=self._runtime.kernel_error(kid) if failed else None,
            ended=self._box.all_ended,
            dealt_from=dealt_from,
        )
        return (*outputs, stats)

    def _raw_telemetry(self) -> KernelTelemetry:
        # The runtime counts sends it carried; this kernel's went to the outbox.
        telemetry = self._runtime.get_telemetry(self.spec.kernel_id)
        return dataclasses.replace(telemetry, messages_sent=self._box.sent)

    def _telemetry(self) -> KernelTelemetry:
        raw = self._raw_telemetry()
        if self._recomputed is None:
            return raw
        return telemetry_difference(raw, self._recomputed)

    async def close(self) -> tuple[ShutdownReport, list[DeadLetter], KernelTelemetry]:
        telemetry = self._telemetry()
        report = await self._runtime.shutdown(timeout=1.0)
        return report, self._runtime.dead_letters(), telemetry


_SUMMED: Final = (
    "messages_received",
    "messages_processed",
    "messages_sent",
    "messages_dropped",
    "messages_rejected",
    "messages_expired",
    "messages_dead_lettered",
    "output_dropped",
    "output_rejected",
    "errors",
    "restarts",
    "stalls",
)


def telemetry_difference(later: KernelTelemetry, earlier: KernelTelemetry) -> KernelTelemetry:
    """``later`` less what ``earlier`` had counted (counters, counts, active time); the
    state and gauges are ``later``'s."""
    counts = {k: v - earlier.counts.get(k, 0) for k, v in later.counts.items()}
    active = max(0.0, later.active_seconds - earlier.active_seconds)
    less = {field: getattr(later, field) - getattr(earlier, field) for field in _SUMMED}
    return dataclasses.replace(later, counts=counts, active_seconds=active, **less)


def merge_telemetry(
    parts: Sequence[KernelTelemetry], extra: Mapping[str, int] | None = None
) -> KernelTelemetry:
    """One worker's telemetry over the actors it ran in (a replacement starts at zero),
    the last one's state and gauges; ``extra`` adds the driver's own counts."""
    last = parts[-1]
    summed: dict[str, Any] = {}
    for field in _SUMMED:
        summed[field] = sum(getattr(p, field) for p in parts) + (extra or {}).get(field, 0)
    summed["input_queue_depth"] = last.input_queue_depth + (extra or {}).get("input_queue_depth", 0)
    summed["active_seconds"] = sum(p.active_seconds for p in parts)
    summed["throughput"] = (
        summed["messages_processed"] / summed["active_seconds"]
        if summed["active_seconds"] > 0
        else 0.0
    )
    counts: dict[str, int] = {}
    for part in parts:
        for key, value in part.counts.items():
            counts[key] = counts.get(key, 0) + value
    return dataclasses.replace(last, counts=counts, **summed)


def _threads(stage: PlannedStage) -> int:
    """The threads a worker of ``stage`` cuts its row-wise work into: its ``threads``
    setting, or for auto the whole CPUs its actor reserves (at least one): an actor shares
    its node, so it takes no more cores than Ray gave it."""
    threads = stage.setting(THREADS)
    if threads is not None:
        return int(threads)
    cpus = stage.setting(NUM_CPUS)
    return max(1, int(cpus)) if cpus is not None else 1
