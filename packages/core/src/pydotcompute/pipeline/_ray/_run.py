"""Running a plan on Ray: one actor per stage worker, micro-batches through the object
store, the driver holding only references.

Design (see docs/ray.md):

* **Workers** are :class:`~._worker.StageWorker` actors, one per worker of each group
  of stages (a fused chain runs in one actor, split where the placement settings
  differ). Each runs the stage's own kernel.
* **Transport**: the driver feeds micro-batches it ``ray.put``\\s; each actor call
  returns its outputs as one object per downstream worker (``num_returns``), and the
  driver hands those references to the next actors' calls unopened: RecordBatches go
  from actor to actor through the object store (numpy buffers read in place on one
  node). Only the sinks' outputs come to the driver. One actor call carries many
  messages: per-message traffic travels in micro-batches too.
* **Backpressure**: per downstream worker the driver keeps the stage's queue: the
  messages waiting for it plus those in its calls in flight (at most
  ``max_in_flight`` calls), at most ``queue_size`` of them. ``block`` makes the
  producer wait, ``reject`` refuses what does not fit and ``drop_oldest`` evicts the
  oldest waiting, counted in the same telemetry fields as on the local engine. The unit
  is what arrives at once: one upstream call's outputs for that worker.
* **Failures**: a crash in the stage's code is handled inside the actor by the stage's
  restart policy, as on the local engine. An actor that dies (``ray.kill``, its node
  lost) is replaced under the same policy and the calls it had not answered are sent
  again (a call passes nothing on before it returns, so nothing is doubled); past the
  policy's limit the run fails with ``StageFailedError`` naming the stage. Outputs lost
  with a node before they were read are made again by the call that made them (see
  :class:`_Origin`), on a live actor of that stage, counted once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any, Final

from ...dataflow import EndOfStream, count_records, record_count
from ...errors import PipelineStateError, StageFailedError
from ...runtime import (
    BackpressureStrategy,
    DeadLetter,
    KernelLeftovers,
    KernelTelemetry,
    RestartTracker,
    ShutdownReport,
)
from .._gc import relaxed_gc
from .._lifecycle import StartsAndCloses, settle_feeder
from .._plan import PipelinePlan, PlannedStage
from .._settings import NUM_CPUS, NUM_GPUS, RESOURCES
from .._telemetry import StageTelemetry, stage_telemetry
from ._require import RayUnavailableError, import_ray
from ._worker import DRIVER, StageWorker, WorkerSpec, WorkerStats, merge_telemetry

__all__ = ["DEFAULT_IN_FLIGHT", "DEFAULT_PLACE_TIMEOUT_S", "RayPipelineRun", "ray_groups"]

#: Calls in flight per worker: enough to keep an actor busy while the driver routes
#: the previous call's outputs; few, so what waits stays in the driver's bounded queue.
DEFAULT_IN_FLIGHT: Final = 4
# One call carries at most this many records (and one stage batch's messages), so a
# call is long against Ray's ~1 ms per call but its arrays stay a few MiB.
_CALL_RECORDS = 65_536
# The kernel queue inside an actor only ever holds the call being worked on.
_ACTOR_QUEUE = 1 << 30
# Close waits this long for calls still in flight, so their outputs are accounted for.
_CLOSE_WAIT_S = 10.0
_END: Final = object()
# An output lost with its node is made again at most this many times over (its maker's
# actor may die again meanwhile, each death counted by the maker's restart policy).
_REMAKE_TRIES = 3
# How long a HOST:PORT address gets to answer before the run says it cannot join it.
_CONNECT_TIMEOUT_S = 5.0
#: How long an actor may wait for a node with the CPUs, GPUs and resources its stage asks
#: for (at the start, and for a replacement after a death, its node's included) before
#: the run fails naming the stage. A cluster may add a node meanwhile; none that fits
#: would leave the run waiting forever.
DEFAULT_PLACE_TIMEOUT_S: Final = 300.0


def ray_groups(plan: PipelinePlan) -> tuple[tuple[str, ...], ...]:
    """The plan's groups as actors run them: a fused chain splits where its stages ask
    for different placement (one actor has one placement)."""
    groups = plan.groups or tuple((stage.name,) for stage in plan.stages)
    split: list[tuple[str, ...]] = []
    for group in groups:
        run = [group[0]]
        for name in group[1:]:
            if _placement(plan[name]) == _placement(plan[run[-1]]):
                run.append(name)
            else:
                split.append(tuple(run))
                run = [name]
        split.append(tuple(run))
    return tuple(split)


def _check_reachable(address: str) -> None:
    """Raise RayUnavailableError if nothing listens at a ``HOST:PORT`` address: Ray's own
    connect retries for many minutes. ``auto`` and ``ray://`` addresses are Ray's."""
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), _CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise RayUnavailableError(
            f"cannot join Ray at {address!r}: nothing answers there ({exc})"
        ) from exc


def _placement(stage: PlannedStage) -> tuple[Any, ...]:
    resources = stage.setting(RESOURCES)
    return (stage.setting(NUM_CPUS), stage.setting(NUM_GPUS), tuple(sorted(resources.items())))


def _actor_options(stage: PlannedStage) -> dict[str, Any]:
    options: dict[str, Any] = {"max_restarts": 0, "max_concurrency": 1}
    cpus = stage.setting(NUM_CPUS)
    if cpus is not None:
        options["num_cpus"] = cpus
    if stage.setting(NUM_GPUS):
        options["num_gpus"] = stage.setting(NUM_GPUS)
    resources = stage.setting(RESOURCES)
    if resources:
        options["resources"] = dict(resources)
    return options


@dataclasses.dataclass(frozen=True)
class _Chunk:
    """Messages that travel together: one object in the store."""

    ref: Any  #: the ObjectRef of a list of messages
    messages: int
    records: int
    maker: str | None = None  #: the worker whose call made it; None: the driver fed it
    origin: _Origin | None = None  #: how to make it again; None: it cannot be


@dataclasses.dataclass(frozen=True)
class _Origin:
    """The call that made a chunk, kept while the chunk is: if the node holding the
    chunk is lost before its reader took it, the call is made again (its inputs made
    again first). What the driver fed stays in the object store until every chunk made
    from it is read; a chunk a stage made is kept by its lineage only (``ref=None``)."""

    inputs: tuple[_Chunk, ...]  #: the call's input chunks
    index: int  #: which of the call's outputs (its place in the worker's targets)
    dealt_from: tuple[int, ...]  #: the call's round-robin start (WorkerStats.dealt_from)


class _Call:
    """One actor call in flight: what it carries (None: the end call), its result refs."""

    __slots__ = ("actor", "chunks", "done", "messages", "refs")

    def __init__(self, chunks: list[_Chunk] | None) -> None:
        self.chunks = chunks
        self.messages = sum(c.messages for c in chunks) if chunks else 0
        self.refs: list[Any] = []
        self.done: asyncio.Future[Any] | None = None
        self.actor: Any = None  #: the actor it was sent to


class _Worker:
    """The driver's side of one worker actor: its queue, its calls, its books."""

    def __init__(self, spec: WorkerSpec, head: PlannedStage, tail: PlannedStage) -> None:
        self.spec = spec
        self.kid = spec.kernel_id
        self.head = head
        self.tail = tail
        self.actor: Any = None
        self.pending: deque[_Chunk] = deque()
        self.pending_messages = 0
        self.in_flight: deque[_Call] = deque()
        self.in_flight_messages = 0
        self.producers_open = 0
        self.finished = False
        self.tracker = RestartTracker(head.restart)
        self.actor_restarts = 0
        self.retired: list[KernelTelemetry] = []  #: telemetry of actors it replaced
        self.live: KernelTelemetry | None = None
        self.received = 0  #: messages offered to its queue (the driver's part)
        self.rejected = 0  #: messages its full REJECT queue refused
        self.dropped = 0  #: messages its full DROP_OLDEST queue evicted
        self.rejected_downstream = 0  #: records of its outputs refused downstream
        self.wake = asyncio.Event()
        self.room = asyncio.Event()
        # Taken to replace the actor: its own calls and a reader of its lost outputs
        # may find it dead at once, and one replacement must serve both.
        self.replacing = asyncio.Lock()
        #: Its outputs can be made again by calling it again (see _Origin): no stage of
        #: its group keeps records between batches.
        self.replayable = not any(s.definition.may_hold_records for s in spec.stages)

    @property
    def load(self) -> int:
        return self.pending_messages + self.in_flight_messages


class RayPipelineRun(StartsAndCloses):
    """One run of a :class:`PipelinePlan` on Ray; get it from ``Pipeline.open()`` with
    ``engine="ray"`` (or a plan whose ``engine`` is ``"ray"``).

    The same interface as :class:`~pydotcompute.PipelineRun`: ``async with`` starts and
    closes it; feed it (:meth:`send`, :meth:`send_many`, :meth:`end_input`,
    :meth:`feed`) while reading :meth:`results`, or :meth:`process` both.

    ``address``: the Ray cluster to join (``"auto"``, ``"HOST:PORT"``, or
    ``"ray://HOST:PORT"``); None starts a local Ray for the run and stops it at the
    end. If Ray is already initialized in this process, the run uses it and leaves it
    running. ``ray_init`` adds keyword arguments for ``ray.init``.
    """

    def __init__(
        self,
        plan: PipelinePlan,
        *,
        address: str | None = None,
        relax_gc: bool = False,
        max_in_flight: int = DEFAULT_IN_FLIGHT,
        ray_init: Mapping[str, Any] | None = None,
        place_timeout_s: float = DEFAULT_PLACE_TIMEOUT_S,
    ) -> None:
        self.plan = plan
        self.address = address
        self.max_in_flight = max_in_flight
        self.place_timeout_s = place_timeout_s
        self._ray_init = dict(ray_init or {})
        self._ray: ModuleType | None = None
        self._owns_ray = False
        self._gc: contextlib.AbstractContextManager[None] = (
            relaxed_gc() if relax_gc else contextlib.nullcontext()
        )
        self._gc_entered = False
        self._groups = ray_groups(plan)
        self._workers: dict[str, _Worker] = {}
        self._ids: dict[str, tuple[str, ...]] = {}  #: stage -> its group's worker ids
        self._group_of: dict[str, tuple[str, ...]] = {}
        self._sources: list[list[_Worker]] = []
        self._next_source: list[int] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._results: asyncio.Queue[Any] = asyncio.Queue(maxsize=64)
        self._sinks_open = 0
        self._failure: BaseException | None = None
        self._started = False
        self._closed = False
        self._input_ended = False
        self._feeder: asyncio.Task[int] | None = None
        # Sink results computed and not handed out (a failure, a reader that stopped):
        # the shutdown report lists them as the sink's unread.
        self._unread: dict[str, list[Any]] = {}
        self._dead_letters: list[DeadLetter] = []
        self.records_fed = 0  #: records sent into the pipeline
        self.records_rejected_at_input = 0  #: records a REJECT source queue refused
        self.ray_startup_s = 0.0  #: seconds to start (or join) Ray and start the actors
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.report: ShutdownReport | None = None
        #: The local engine serves Prometheus metrics at this URL; not on Ray (None).
        self.metrics_url: str | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start (or join) Ray, start every worker's actor, and wait until they are up.
        Idempotent."""
        if self._started:
            return
        self._started = True
        began = time.perf_counter()
        ray = import_ray()
        self._ray = ray
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            options.update(self._ray_init)
            if self.address is not None:
                await asyncio.to_thread(_check_reachable, self.address)
            # Without an address, a Ray of the run's own ("local"), never one that
            # happens to be running on this machine.
            address = "local" if self.address is None else self.address
            try:
                await asyncio.to_thread(ray.init, address=address, **options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = "a local Ray" if self.address is None else f"Ray at {self.address!r}"
                raise RayUnavailableError(f"cannot start or join {where}: {exc}") from exc
            self._owns_ray = True
        self._gc.__enter__()
        self._gc_entered = True
        for group in self._groups:
            ids = self.plan[group[0]].kernel_ids
            for name in group:
                self._ids[name] = ids
                self._group_of[name] = group
        actor_class = ray.remote(StageWorker)
        for group in self._groups:
            head, tail = self.plan[group[0]], self.plan[group[-1]]
            downstream = tuple(self._ids[name] for name in tail.outputs)
            for index, kid in enumerate(self._ids[head.name]):
                spec = WorkerSpec(
                    kernel_id=kid,
                    worker=index,
                    stages=tuple(self.plan[name] for name in group),
                    downstream=downstream,
                    capacity=_ACTOR_QUEUE,
                )
                worker = _Worker(spec, head, tail)
                worker.producers_open = (
                    sum(len(self._ids[name]) for name in head.inputs) if head.inputs else 1
                )
                worker.actor = actor_class.options(**_actor_options(head)).remote(spec)
                self._workers[kid] = worker
                if not tail.outputs:
                    self._sinks_open += 1
        self._sources = [
            [self._workers[kid] for kid in self._ids[stage.name]] for stage in self.plan.sources
        ]
        self._next_source = [0] * len(self._sources)
        # Up before the clock starts: actor start-up is Ray's, reported apart.
        await asyncio.gather(*(self._placed(w) for w in self._workers.values()))
        self.ray_startup_s = time.perf_counter() - began
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._guard(w)) for w in self._workers.values()]
        self.started_at = time.perf_counter()

    async def close(self) -> ShutdownReport | None:
        """Stop the run: account for the calls in flight, close every actor (its
        shutdown report and dead letters join the run's), and stop Ray if the run
        started it. Idempotent."""
        if self._closed:
            return self.report
        self._closed = True
        if self.ended_at is None and self.started_at is not None:
            self.ended_at = time.perf_counter()
        feeder = self._feeder
        if feeder is not None and not feeder.done() and feeder is not asyncio.current_task():
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        await asyncio.gather(
            *(t for t in self._tasks if t is not asyncio.current_task()), return_exceptions=True
        )
        try:
            if self._ray is not None and self._workers:
                self.report = await self._shut_actors()
            return self.report
        finally:
            if self._gc_entered:
                self._gc_entered = False
                self._gc.__exit__(None, None, None)
            if self._owns_ray and self._ray is not None:
                self._ray.shutdown()

    async def _shut_actors(self) -> ShutdownReport:
        began = time.perf_counter()
        # Calls still in flight: wait for them, so what they made is accounted for.
        held: dict[str, list[Any]] = {kid: [] for kid in self._workers}
        for worker in self._workers.values():
            while worker.in_flight:
                call = worker.in_flight.popleft()
                try:
                    assert call.done is not None
                    stats: WorkerStats = await asyncio.wait_for(
                        asyncio.shield(call.done), _CLOSE_WAIT_S
                    )
                except Exception:  # the actor died or hangs: it held what the call carried
                    held[worker.kid].extend(await self._open(call.chunks or []))
                    continue
                worker.live = stats.telemetry
                for target, ref, (messages, _) in zip(
                    worker.spec.targets, call.refs, stats.sent, strict=False
                ):
                    if not messages:
                        continue
                    if target == DRIVER:
                        self._keep(worker.kid, await self._await(ref))
                    else:
                        held[target].extend(await self._await(ref))
            held[worker.kid][:0] = await self._open(list(worker.pending))
            worker.pending.clear()
        # Bounded: an actor that never got a node (or hangs) answers nothing.
        closes = {
            kid: asyncio.wait_for(self._await(w.actor.close.remote()), _CLOSE_WAIT_S)
            for kid, w in self._workers.items()
        }
        outcomes = await asyncio.gather(*closes.values(), return_exceptions=True)
        kernels: dict[str, KernelLeftovers] = {}
        drained = True
        for (kid, worker), outcome in zip(self._workers.items(), outcomes, strict=True):
            if isinstance(outcome, BaseException):
                kernels[kid] = KernelLeftovers(
                    kid,
                    "failed",
                    tuple(held[kid]),
                    tuple(self._unread.get(kid, ())),
                    (),
                    outcome,
                    stuck=False,
                )
                drained = False
                continue
            report, letters, telemetry = outcome
            worker.live = telemetry
            self._dead_letters.extend(letters)
            own = report.kernels[kid]
            drained = drained and report.drained
            kernels[kid] = dataclasses.replace(
                own,
                unprocessed=(*held[kid], *own.unprocessed),
                unread=(*self._unread.get(kid, ()), *own.unread),
            )
        for worker in self._workers.values():
            with contextlib.suppress(Exception):
                self._ray_module.kill(worker.actor)
        return ShutdownReport(
            kernels=kernels, drained=drained, duration_s=time.perf_counter() - began
        )

    @property
    def _ray_module(self) -> ModuleType:
        if self._ray is None:
            raise PipelineStateError(
                "the run is not started: use `async with pipeline.open() as run`"
            )
        return self._ray

    async def _await(self, ref: Any) -> Any:
        return await asyncio.wrap_future(ref.future())

    async def _placed(self, worker: _Worker) -> None:
        """Wait until ``worker``'s actor runs on a node.

        Raises:
            StageFailedError: no node took it within ``place_timeout_s``.
        """
        try:
            await asyncio.wait_for(self._await(worker.actor.node_id.remote()), self.place_timeout_s)
        except TimeoutError:
            asked = _actor_options(worker.head)
            del asked["max_restarts"], asked["max_concurrency"]
            error = TimeoutError(
                f"no node of the cluster took its actor within {self.place_timeout_s:g} s "
                f"(it asks for {asked or 'one CPU'}): add a node that has them, or "
                "change the stage's num_cpus, num_gpus or resources"
            )
            raise StageFailedError(worker.head.name, worker.kid, error) from None

    async def _open(self, chunks: Sequence[_Chunk]) -> list[Any]:
        msgs: list[Any] = []
        for chunk in chunks:
            with contextlib.suppress(Exception):  # an object lost with its node
                msgs.extend(await self._await(chunk.ref))
        return msgs

    # -- the workers -------------------------------------------------------------------

    async def _guard(self, worker: _Worker) -> None:
        try:
            await self._drive(worker)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
            with contextlib.suppress(asyncio.QueueFull):
                self._results.put_nowait(_END)
            for worker in self._workers.values():
                worker.room.set()
                worker.wake.set()

    async def _drive(self, worker: _Worker) -> None:
        """Send ``worker``'s queue on in calls, route what they return, end it."""
        waker: asyncio.Task[Any] | None = None
        ending = False
        try:
            while self._failure is None:
                while worker.pending and len(worker.in_flight) < self.max_in_flight:
                    self._submit(worker, self._take_call(worker))
                if worker.in_flight:
                    call = worker.in_flight[0]
                    assert call.done is not None
                    if not call.done.done():
                        if waker is None or waker.done():
                            worker.wake.clear()
                            waker = asyncio.get_running_loop().create_task(worker.wake.wait())
                        await asyncio.wait({call.done, waker}, return_when=asyncio.FIRST_COMPLETED)
                        continue
                    await self._complete(worker, call)
                    if call.chunks is None and call not in worker.in_flight:
                        await self._finished(worker)
                        return
                    continue
                if worker.producers_open == 0 and not worker.pending and not ending:
                    ending = True
                    self._submit(worker, _Call(None))
                    continue
                worker.wake.clear()
                await worker.wake.wait()
        finally:
            if waker is not None:
                waker.cancel()

    def _take_call(self, worker: _Worker) -> _Call:
        chunks = [worker.pending.popleft()]
        messages, records = chunks[0].messages, chunks[0].records
        limit = worker.head.batch_size
        while worker.pending:
            chunk = worker.pending[0]
            if messages + chunk.messages > limit or records + chunk.records > _CALL_RECORDS:
                break
            chunks.append(worker.pending.popleft())
            messages += chunk.messages
            records += chunk.records
        worker.pending_messages -= messages
        worker.in_flight_messages += messages
        return _Call(chunks)

    def _submit(self, worker: _Worker, call: _Call) -> None:
        self._send(worker, call)
        worker.in_flight.append(call)

    def _send(self, worker: _Worker, call: _Call) -> None:
        method = worker.actor.end if call.chunks is None else worker.actor.push
        refs = method.options(num_returns=len(worker.spec.targets) + 1).remote(
            *(chunk.ref for chunk in call.chunks or ())
        )
        call.actor = worker.actor
        call.refs = list(refs)
        call.done = asyncio.ensure_future(self._await(call.refs[-1]))

    async def _complete(self, worker: _Worker, call: _Call) -> None:
        """The call at the head of ``worker``'s calls has answered: route its outputs in
        order; replace a dead actor and send its calls again; fail past the limit."""
        ray = self._ray_module
        assert call.done is not None
        try:
            stats: WorkerStats = call.done.result()
        except ray.exceptions.RayActorError as exc:
            await self._replace(worker, exc, call.actor)
            return
        except Exception as exc:  # the call raised in the actor, or lost an input
            if not _lost_object(ray, exc) or call.chunks is None:
                raise StageFailedError(worker.head.name, worker.kid, exc) from exc
            await self._resend_with_lost_inputs(worker, call, exc)
            return
        if stats.error is not None:
            worker.live = stats.telemetry
            raise StageFailedError(worker.head.name, worker.kid, stats.error) from stats.error
        results: list[Any] = []
        if worker.spec.targets == (DRIVER,) and stats.sent and stats.sent[0][0]:
            try:
                # A sink's results, read before the call counts as done: if they were
                # lost with the actor's node, the call runs again on a new actor (its
                # books start before the call: it is counted once).
                results = await self._await(call.refs[0])
            except ray.exceptions.ObjectLostError as exc:
                await self._replace(worker, exc, call.actor)
                return
            except ray.exceptions.RayError as exc:
                raise StageFailedError(worker.head.name, worker.kid, exc) from exc
        worker.in_flight.popleft()
        worker.in_flight_messages -= call.messages
        worker.room.set()
        worker.live = stats.telemetry
        for index, (target, ref, (messages, records)) in enumerate(
            zip(worker.spec.targets, call.refs, stats.sent, strict=False)
        ):
            if not messages:
                continue
            if target == DRIVER:
                msgs = results
                if self._failure is not None:
                    self._keep(worker.kid, msgs)
                    continue
                try:
                    await self._results.put((worker.kid, msgs))
                except asyncio.CancelledError:
                    self._keep(worker.kid, msgs)
                    raise
            else:
                origin = None
                if worker.replayable and call.chunks:
                    inputs = tuple(
                        c if c.maker is None else dataclasses.replace(c, ref=None)
                        for c in call.chunks
                    )
                    origin = _Origin(inputs, index, stats.dealt_from)
                chunk = _Chunk(ref, messages, records, worker.kid, origin)
                await self._offer(self._workers[target], chunk, worker)

    async def _resend_with_lost_inputs(
        self, worker: _Worker, call: _Call, error: BaseException
    ) -> None:
        """An input of ``worker``'s call (the head of its calls) was lost with the node
        that held it, so the call did not run: make its inputs again, send it again.

        Raises:
            StageFailedError: ``worker`` may keep records between batches (its later
                calls ran before this one would), or an input cannot be made again.
        """
        if not worker.replayable:
            lost = RuntimeError(
                f"an input of its call was lost with the node that held it ({error}); "
                "it may keep records between batches, so calls made after that one "
                "have run before it could, and what it keeps would be out of order"
            )
            raise StageFailedError(worker.head.name, worker.kid, lost) from error
        assert call.chunks is not None
        call.chunks = await self._lost_made_again(call.chunks, worker, error)
        self._send(worker, call)

    async def _lost_made_again(
        self, chunks: Sequence[_Chunk], reader: _Worker, error: BaseException
    ) -> list[_Chunk]:
        """``chunks`` (a call's inputs, which ``reader`` failed on with ``error``), the
        lost one made again: the one Ray names (another lost one fails the call again,
        and comes next), or every one if it names none of them."""
        named = _lost_ref_hex(error)
        if named is None or not any(c.ref.hex() == named for c in chunks):
            return [await self._made_again(c, reader, error) for c in chunks]
        return [
            await self._made_again(c, reader, error) if c.ref.hex() == named else c for c in chunks
        ]

    async def _made_again(self, chunk: _Chunk, reader: _Worker, error: BaseException) -> _Chunk:
        """``chunk`` made again by the call that made it, on its worker's actor (a new
        one if that died), its own inputs made again first if they were lost too.

        Raises:
            StageFailedError: naming the stage that made the chunk, if it cannot be made
                again (no origin: a stage that may keep records made it) or comes out
                different; naming ``reader`` if the driver fed it.
        """
        ray = self._ray_module
        origin = chunk.origin
        if origin is None or chunk.maker is None:
            maker = reader if chunk.maker is None else self._workers[chunk.maker]
            lost = RuntimeError(
                f"{chunk.records} records on their way to {reader.head.name!r} were lost "
                f"with the node that held them ({error}), and they cannot be made again"
                + (
                    f": stage {maker.head.name!r} may keep records between batches"
                    if not maker.replayable
                    else ""
                )
            )
            raise StageFailedError(maker.head.name, maker.kid, lost) from error
        producer = self._workers[chunk.maker]
        inputs = [
            c if c.ref is not None else await self._made_again(c, producer, error)
            for c in origin.inputs
        ]
        for _ in range(_REMAKE_TRIES):
            actor = await self._live_actor(producer)
            refs = actor.recompute.options(num_returns=len(producer.spec.targets) + 1).remote(
                origin.dealt_from, *(c.ref for c in inputs)
            )
            try:
                stats: WorkerStats = await self._await(refs[-1])
            except ray.exceptions.RayActorError:
                continue  # its actor died meanwhile: the next try has a new one
            except Exception as exc:
                if not _lost_object(ray, exc):
                    raise StageFailedError(producer.head.name, producer.kid, exc) from exc
                inputs = await self._lost_made_again(inputs, producer, exc)
                continue
            if stats.error is not None:
                raise StageFailedError(
                    producer.head.name, producer.kid, stats.error
                ) from stats.error
            made = stats.sent[origin.index]
            if made != (chunk.messages, chunk.records):
                different = RuntimeError(
                    f"made again after its node was lost, its output for "
                    f"{reader.head.name!r} is {made[0]} messages of {made[1]} records, not "
                    f"{chunk.messages} of {chunk.records}: a stage must give the same "
                    "outputs for the same inputs to be made again"
                )
                raise StageFailedError(producer.head.name, producer.kid, different) from error
            return dataclasses.replace(chunk, ref=refs[origin.index])
        gone = RuntimeError(
            f"an output it sent to {reader.head.name!r} was lost with its node and could "
            f"not be made again in {_REMAKE_TRIES} tries (its actors kept dying)"
        )
        raise StageFailedError(producer.head.name, producer.kid, gone) from error

    async def _live_actor(self, worker: _Worker) -> Any:
        """``worker``'s actor, replaced under its restart policy if it is dead."""
        ray = self._ray_module
        async with worker.replacing:
            actor = worker.actor
            try:
                await asyncio.wait_for(self._await(actor.node_id.remote()), self.place_timeout_s)
                return actor
            except ray.exceptions.RayActorError as exc:
                await self._replace_locked(worker, exc, actor)
                return worker.actor

    async def _replace(self, worker: _Worker, error: BaseException, dead: Any) -> None:
        """``worker``'s actor ``dead`` died: start another under the stage's restart
        policy and send it every call the dead one had not answered, in order. If
        another task replaced it meanwhile, that one sent them."""
        async with worker.replacing:
            await self._replace_locked(worker, error, dead)

    async def _replace_locked(self, worker: _Worker, error: BaseException, dead: Any) -> None:
        if worker.actor is not dead:
            return
        ray = self._ray_module
        if not worker.replayable and worker.live is not None:
            # It answered calls, and what it kept from them died with it: replaying the
            # unanswered calls cannot bring that back, so stop rather than lose it unseen.
            holding = [s.name for s in worker.spec.stages if s.definition.may_hold_records]
            lost = RuntimeError(
                f"its actor was lost ({error}) holding state that a new actor cannot "
                f"have: stage {', '.join(map(repr, holding))} may keep records between "
                "batches, and those it kept are gone with the actor (declare "
                "holds_records=False on a stage that keeps none, to have it restarted)"
            )
            raise StageFailedError(worker.head.name, worker.kid, lost) from error
        delay = worker.tracker.next_delay(time.monotonic())
        if delay is None:
            raise StageFailedError(worker.head.name, worker.kid, error) from error
        if delay:
            await asyncio.sleep(delay)
        with contextlib.suppress(Exception):
            ray.kill(worker.actor)
        if worker.live is not None:
            worker.retired.append(worker.live)
            worker.live = None
        worker.actor_restarts += 1
        worker.actor = (
            ray.remote(StageWorker).options(**_actor_options(worker.head)).remote(worker.spec)
        )
        await self._placed(worker)  # past the bound, the calls it holds stay accounted for
        calls = list(worker.in_flight)
        worker.in_flight.clear()
        for call in calls:
            if call.done is not None:
                call.done.cancel()
            self._submit(worker, call)

    async def _offer(self, worker: _Worker, chunk: _Chunk, producer: _Worker | None) -> None:
        """Put ``chunk`` in ``worker``'s queue under its stage's backpressure."""
        capacity = worker.head.queue_size
        strategy = worker.head.backpressure
        worker.received += chunk.messages
        if strategy is BackpressureStrategy.BLOCK:
            # Past a failure nothing moves: the chunk waits in the queue, where the
            # shutdown report finds it.
            while worker.load and worker.load + chunk.messages > capacity and not self._failure:
                worker.room.clear()
                await worker.room.wait()
        elif strategy is BackpressureStrategy.REJECT:
            if worker.load and worker.load + chunk.messages > capacity:
                worker.rejected += chunk.messages
                if producer is None:
                    self.records_rejected_at_input += chunk.records
                else:
                    producer.rejected_downstream += chunk.records
                return
        else:  # DROP_OLDEST: evict what waits longest (calls in flight are taken)
            while worker.pending and worker.load + chunk.messages > capacity:
                evicted = worker.pending.popleft()
                worker.pending_messages -= evicted.messages
                worker.dropped += evicted.messages
        worker.pending.append(chunk)
        worker.pending_messages += chunk.messages
        worker.wake.set()

    async def _finished(self, worker: _Worker) -> None:
        worker.finished = True
        for target in worker.spec.targets:
            if target == DRIVER:
                self._sinks_open -= 1
                if self._sinks_open == 0:
                    await self._results.put(_END)
            else:
                downstream = self._workers[target]
                downstream.producers_open -= 1
                downstream.wake.set()

    # -- feeding -----------------------------------------------------------------------

    async def send(self, msg: Any) -> None:
        """Feed one message (a record or a RecordBatch) to every source stage."""
        await self.send_many([msg])

    async def send_many(self, msgs: Sequence[Any]) -> None:
        """Feed several messages as one chunk: to every source stage, one of its workers
        in turn. Waits while a BLOCK source's queue is full; a full REJECT source
        refuses the chunk (counted in :attr:`records_rejected_at_input`).

        Raises:
            PipelineStateError: the input was already ended.
            StageFailedError: a stage failed.
        """
        if self._input_ended:
            raise PipelineStateError(
                "the pipeline's input was ended; start another run to feed more"
            )
        if self._failure is not None:
            raise self._failure
        if not msgs:
            return
        count = count_records(msgs)
        chunk = _Chunk(self._ray_module.put(list(msgs)), len(msgs), count)
        for i, workers in enumerate(self._sources):
            index = self._next_source[i]
            self._next_source[i] = (index + 1) % len(workers)
            await self._offer(workers[index], chunk, None)
        self.records_fed += count

    async def end_input(self) -> None:
        """Nothing more is coming: the run drains and ends. Idempotent."""
        if self._input_ended:
            return
        self._input_ended = True
        for workers in self._sources:
            for worker in workers:
                worker.producers_open -= 1
                worker.wake.set()

    async def feed(self, inputs: Iterable[Any] | AsyncIterable[Any]) -> int:
        """Feed every message of ``inputs`` in chunks (at most a source stage's
        ``batch_size`` messages, or ``_CALL_RECORDS`` records, each), then
        :meth:`end_input`; returns how many messages were sent."""
        most = min(stage.batch_size for stage in self.plan.sources)
        sent = 0
        group: list[Any] = []
        records = 0

        async def flush() -> None:
            nonlocal sent, group, records
            await self.send_many(group)
            sent += len(group)
            group, records = [], 0

        if isinstance(inputs, AsyncIterable):
            async for msg in inputs:
                group.append(msg)
                records += record_count(msg)
                if records >= _CALL_RECORDS or len(group) >= most:
                    await flush()
        else:
            for msg in inputs:
                group.append(msg)
                records += record_count(msg)
                if records >= _CALL_RECORDS or len(group) >= most:
                    await flush()
        if group:
            await flush()
        await self.end_input()
        return sent

    # -- results -----------------------------------------------------------------------

    async def process(self, inputs: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
        """Feed ``inputs`` in the background and yield results as they complete.

        Raises:
            StageFailedError: a stage failed (the run is stopped).
        """
        if self._feeder is not None:
            raise PipelineStateError("process() runs once per run; open another run")
        self._feeder = asyncio.get_running_loop().create_task(self.feed(inputs))
        try:
            async for result in self.results():
                yield result
            await self._feeder
        except BaseException as leaving:
            await settle_feeder(self._feeder, leaving)
            raise

    async def results(self) -> AsyncIterator[Any]:
        """Yield what the sink stages send, until every sink has finished.

        Raises:
            StageFailedError: a stage failed (the run is stopped).
        """
        while True:
            item = await self._results.get()
            if self._failure is not None:
                if item is not _END:
                    self._keep(*item)
                await self._raise_failure()
            if item is _END:
                break
            kid, msgs = item
            for i, msg in enumerate(msgs):
                if type(msg) is EndOfStream:
                    continue
                try:
                    yield msg
                except GeneratorExit:
                    self._keep(kid, msgs[i + 1 :])
                    raise
        self.ended_at = time.perf_counter()

    async def _raise_failure(self) -> Any:
        failure = self._failure
        assert failure is not None
        await self.close()
        raise failure

    def _keep(self, kid: str, msgs: Sequence[Any]) -> None:
        self._unread.setdefault(kid, []).extend(m for m in msgs if type(m) is not EndOfStream)

    async def stop_and_collect(self) -> list[Any]:
        """Stop every worker now, without draining, and return the results computed
        that nobody read (no longer left behind in the shutdown report)."""
        self._fail(PipelineStateError("the run was stopped"))
        await self.close()
        taken = [m for msgs in self._unread.values() for m in msgs]
        self._unread.clear()
        if self.report is not None:
            self.report = dataclasses.replace(
                self.report,
                kernels={
                    kid: dataclasses.replace(k, unread=()) for kid, k in self.report.kernels.items()
                },
            )
        return taken

    # -- telemetry ---------------------------------------------------------------------

    def dead_letters(self) -> list[DeadLetter]:
        """The dead letters of every actor (after close; an actor that died took its
        own with it)."""
        return list(self._dead_letters)

    def actors(self) -> dict[str, Any]:
        """Worker kernel id -> its actor handle now (a replaced actor's successor)."""
        return {kid: worker.actor for kid, worker in self._workers.items()}

    def telemetry(self) -> dict[str, StageTelemetry]:
        """Per-stage telemetry in the local engine's form (valid after close too)."""
        if self.started_at is None:
            seconds = 0.0
        else:
            seconds = (self.ended_at or time.perf_counter()) - self.started_at
        kernels = self.worker_telemetry()
        return {
            stage.name: stage_telemetry(
                stage,
                [kernels[kid] for kid in self._ids[stage.name]],
                seconds,
                0,
                self._group_of[stage.name],
            )
            for stage in self.plan.stages
        }

    def worker_telemetry(self) -> dict[str, KernelTelemetry]:
        """Each worker's telemetry by kernel id, over every actor it ran in, with the
        driver's part of its queue (what it refused, evicted or holds) added."""
        return {kid: self._kernel_telemetry(worker) for kid, worker in self._workers.items()}

    def _kernel_telemetry(self, worker: _Worker) -> KernelTelemetry:
        parts = [*worker.retired, *([worker.live] if worker.live is not None else [])]
        if not parts:
            parts = [_idle_telemetry(worker.kid)]
        merged = merge_telemetry(
            parts,
            {
                "messages_received": worker.rejected + worker.dropped,
                "messages_rejected": worker.rejected,
                "messages_dropped": worker.dropped,
                "restarts": worker.actor_restarts,
                "input_queue_depth": worker.pending_messages,
            },
        )
        if worker.rejected_downstream:
            counts = dict(merged.counts)
            fused = len(self._group_of[worker.tail.name]) > 1
            key = f"{worker.tail.name}:records_rejected" if fused else "records_rejected"
            counts[key] = counts.get(key, 0) + worker.rejected_downstream
            merged = dataclasses.replace(merged, counts=counts)
        return merged


def _lost_object(ray: ModuleType, error: BaseException) -> bool:
    """Whether ``error`` says an object (an output or an input of a call) was lost."""
    lost = ray.exceptions.ObjectLostError
    return isinstance(error, lost) or isinstance(getattr(error, "cause", None), lost)


def _lost_ref_hex(error: BaseException) -> str | None:
    """The id of the object ``error`` says was lost, if it says."""
    for candidate in (error, getattr(error, "cause", None)):
        found = getattr(candidate, "object_ref_hex", None)
        if isinstance(found, str):
            return found
    return None


def _idle_telemetry(kid: str) -> KernelTelemetry:
    return KernelTelemetry(
        kernel_id=kid,
        state="active",
        messages_received=0,
        messages_processed=0,
        messages_sent=0,
        messages_dropped=0,
        messages_rejected=0,
        messages_expired=0,
        messages_dead_lettered=0,
        output_dropped=0,
        output_rejected=0,
        errors=0,
        restarts=0,
        stalls=0,
        input_queue_depth=0,
        output_queue_depth=0,
        active_seconds=0.0,
        throughput=0.0,
        queue_wait_p50_us=float("nan"),
        queue_wait_p99_us=float("nan"),
    )
