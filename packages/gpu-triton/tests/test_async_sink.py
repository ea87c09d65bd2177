"""The host never waits for the device inside the loop (issue 11, item 3).

A map stage whose results leave the pipeline awaits the backend's ``to_numpy_async``:
on CUDA a non-blocking copy into pinned memory and an event polled from asyncio; on the
CPU it completes at once. A device fault ends the worker and fails the run with
``DeviceFaultError`` instead of turning every later batch into a StageError.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
import torch
from pydotcompute import Pipeline, PipelineRun, StageError
from pydotcompute.errors import DeviceFaultError, StageFailedError
from pydotcompute.plugins import create_plugin_manager
from pydotcompute.stage import RecordBatch, record_ids_for_rows, row_indices
from pydotcompute_triton import TorchBackend
from pydotcompute_triton._host_copy import device_fault, to_numpy_async, wait_for_event

ILLEGAL = "CUDA error: an illegal memory access was encountered"


def test_a_cpu_tensor_comes_back_at_once() -> None:
    x = torch.arange(6, dtype=torch.bfloat16).reshape(2, 3)
    coroutine = to_numpy_async(x)
    with pytest.raises(StopIteration) as done:  # finished on its first step: no waiting
        coroutine.send(None)
    got = done.value.value
    assert got.dtype == np.float32 and got.tolist() == [[0, 1, 2], [3, 4, 5]]


class FakeEvent:
    """A CUDA event's query(): not done for ``busy`` queries, then done (or a fault)."""

    def __init__(self, busy: int, fault: Exception | None = None) -> None:
        self.busy = busy
        self.fault = fault
        self.queries = 0

    def query(self) -> bool:
        self.queries += 1
        if self.queries > self.busy:
            if self.fault is not None:
                raise self.fault
            return True
        return False


async def test_waiting_for_an_event_lets_the_loop_go_on() -> None:
    event = FakeEvent(busy=4)
    ticks = 0

    async def other_work() -> None:
        nonlocal ticks
        while event.queries <= event.busy:
            ticks += 1
            await asyncio.sleep(0)

    await asyncio.gather(wait_for_event(event), other_work())
    assert event.queries == 5 and ticks >= 4  # the loop ran between the polls


async def test_a_device_fault_at_the_event_is_a_device_fault_error() -> None:
    with pytest.raises(DeviceFaultError, match=r"illegal memory access.*sticky") as caught:
        await wait_for_event(FakeEvent(busy=1, fault=RuntimeError(ILLEGAL)))
    assert isinstance(caught.value.__cause__, RuntimeError)
    with pytest.raises(ValueError, match="not a device"):  # anything else passes through
        await wait_for_event(FakeEvent(busy=0, fault=ValueError("not a device")))


def test_device_fault_tells_device_errors_from_data_errors() -> None:
    fault = device_fault(RuntimeError(ILLEGAL), torch.device("cuda", 1))
    assert isinstance(fault, DeviceFaultError) and "device cuda:1 failed" in str(fault)
    assert device_fault(RuntimeError("shapes do not match")) is None
    assert device_fault(ValueError(ILLEGAL)) is None  # only runtime errors are device errors
    assert TorchBackend("cpu").device_fault(RuntimeError(ILLEGAL)) is not None


def batches(n: int = 3, rows: int = 8, width: int = 4) -> list[RecordBatch]:
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((n * rows, width)))
    return [
        RecordBatch(
            values=x[i * rows : (i + 1) * rows], record_ids=record_ids_for_rows(i * rows, rows, 1)
        )
        for i in range(n)
    ]


def two_stages(fuse: bool) -> Any:
    pipeline = (
        Pipeline()
        .add_stage("preprocess", backend="torch")
        .add_stage("compute", backend="torch", fuse=fuse, params={"stats": ["mean"]})
    )
    return pipeline.validate(create_plugin_manager())


@pytest.mark.parametrize("fuse", [True, False])
async def test_the_sink_awaits_the_backends_host_copy(
    monkeypatch: pytest.MonkeyPatch, fuse: bool
) -> None:
    awaited: list[tuple[int, ...]] = []
    original = TorchBackend.to_numpy_async

    async def counting(self: TorchBackend, x: Any) -> Any:
        awaited.append(tuple(x.shape))
        return await original(self, x)

    monkeypatch.setattr(TorchBackend, "to_numpy_async", counting)
    async with PipelineRun(two_stages(fuse)) as run:
        results = [r async for r in run.process(batches())]
    assert awaited == [(8, 1)] * 3  # the sink's results only: (rows, one statistic)
    assert all(type(r.values) is np.ndarray and r.values.shape == (8, 1) for r in results)


@pytest.mark.parametrize("fuse", [True, False])
async def test_a_device_fault_fails_the_run_naming_the_stage(
    monkeypatch: pytest.MonkeyPatch, fuse: bool
) -> None:
    def broken(self: TorchBackend, x: Any) -> Any:
        raise RuntimeError(ILLEGAL)

    monkeypatch.setattr(TorchBackend, "row_mean", broken)
    worker = "preprocess" if fuse else "compute"  # a fused chain runs in its first's workers
    with pytest.raises(StageFailedError, match=f"stage '{worker}' failed") as caught:
        async with PipelineRun(two_stages(fuse)) as run:
            [r async for r in run.process(batches())]
    assert isinstance(caught.value.error, DeviceFaultError)
    assert "illegal memory access" in str(caught.value.error)


async def test_a_data_error_still_fails_only_its_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    def wrong(self: TorchBackend, x: Any) -> Any:
        raise RuntimeError("shapes do not match")

    monkeypatch.setattr(TorchBackend, "row_mean", wrong)
    async with PipelineRun(two_stages(True)) as run:
        results = [r async for r in run.process(batches())]
    assert len(results) == 3 and all(type(r) is StageError for r in results)


async def test_a_sink_starts_every_copy_before_awaiting_the_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batches a sink takes together: each one's copy starts as soon as it is computed,
    so the device works on batch n+1 while the host waits for batch n; the results still
    leave in order."""
    events: list[str] = []
    original = TorchBackend.to_numpy_async

    async def slow_first(self: TorchBackend, x: Any) -> Any:
        index = len([e for e in events if e.startswith("start")])
        events.append(f"start {index}")
        await asyncio.sleep(0.05 if index == 0 else 0.0)  # the first copy finishes last
        events.append(f"end {index}")
        return await original(self, x)

    monkeypatch.setattr(TorchBackend, "to_numpy_async", slow_first)
    run = PipelineRun(two_stages(fuse=True))
    async with run:
        await run.runtime.deactivate("preprocess")  # the fused worker: let its queue fill
        for b in batches():
            await run.send(b)
        await run.end_input()
        await run.runtime.reactivate("preprocess")
        results = [r async for r in run.results()]
    assert events[:3] == ["start 0", "start 1", "start 2"]  # all started before any ended
    assert events.index("end 0") > events.index("end 2")  # the first finished last...
    starts = [int(row_indices(r.record_ids)[0]) for r in results]
    assert starts == [0, 8, 16]  # ...and still went first
