"""Results to the host without stopping the event loop: pinned memory, a non-blocking
copy, and a CUDA event polled from asyncio.

A blocking ``.cpu()`` in a sink stops the only event-loop thread until the device has
finished everything queued before the copy, so host work and device work add up. Here
the copy is queued behind the batch's kernels into page-locked host memory, an event is
recorded after it, and the coroutine sleeps until the event reports done: meanwhile the
loop feeds the next batch to the device and hands the finished ones to the reader.

A device fault (a sticky CUDA error such as an illegal memory access) surfaces at the
copy or at the event; it becomes :class:`~pydotcompute.errors.DeviceFaultError`, which
ends the stage's worker and so fails the run with a message naming the device.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import numpy.typing as npt
import torch
from pydotcompute.errors import DeviceFaultError

from ._convert import to_numpy

__all__ = ["device_fault", "to_numpy_async", "wait_for_event"]

# Polling: the first check is immediate (a small copy is often done by the time the loop
# comes back), then the wait doubles up to a cap well below a batch's device time.
_FIRST_POLL_S: Final = 0.0
_MIN_POLL_S: Final = 20e-6
_MAX_POLL_S: Final = 500e-6

# Words of the messages CUDA errors carry (torch raises them as RuntimeError, or as
# torch.AcceleratorError, a RuntimeError, from 2.8 on).
_FAULT_WORDS: Final = ("CUDA error", "cudaError", "device-side assert", "illegal memory access")


def device_fault(exc: BaseException, device: Any = None) -> DeviceFaultError | None:
    """``exc`` as a :class:`DeviceFaultError` when it is a device's fault (a CUDA error),
    else None. Already one: returned as it is."""
    if isinstance(exc, DeviceFaultError):
        return exc
    accelerator = getattr(torch, "AcceleratorError", None)
    text = str(exc)
    is_fault = (accelerator is not None and isinstance(exc, accelerator)) or (
        isinstance(exc, RuntimeError) and any(word in text for word in _FAULT_WORDS)
    )
    if not is_fault:
        return None
    where = f"device {device}" if device is not None else "the device"
    fault = DeviceFaultError(
        f"{where} failed: {type(exc).__name__}: {text.strip().splitlines()[0] if text else ''} "
        "(a CUDA fault is sticky: every later launch on the device fails too; rerun with "
        "CUDA_LAUNCH_BLOCKING=1 to find the kernel)"
    )
    fault.__cause__ = exc
    return fault


async def wait_for_event(event: Any) -> None:
    """Return once ``event.query()`` says the work before it is done, sleeping in
    between so that the event loop goes on.

    Raises:
        DeviceFaultError: the query reported a device fault.
    """
    delay = _FIRST_POLL_S
    while True:
        try:
            done = event.query()
        except Exception as exc:
            fault = device_fault(exc)
            if fault is None:
                raise
            raise fault from exc
        if done:
            return
        await asyncio.sleep(delay)
        delay = min(max(2 * delay, _MIN_POLL_S), _MAX_POLL_S)


async def to_numpy_async(x: Any) -> npt.NDArray[Any]:
    """``x`` (a tensor) as a host numpy array, without blocking the event loop.

    CUDA tensors: copied into pinned host memory with ``non_blocking=True`` behind the
    work already queued on the current stream, then awaited through a CUDA event (each
    result gets its own buffer, since the caller keeps the array; torch's pinned-memory
    cache recycles freed ones). Anything else converts at once, as ``to_numpy`` does.
    bfloat16 comes back float32 (numpy has none), converted on the host.

    Raises:
        DeviceFaultError: the device failed before or during the copy.
    """
    if not isinstance(x, torch.Tensor) or x.device.type != "cuda":
        return to_numpy(x)
    try:
        with torch.cuda.device(x.device):
            host = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
            host.copy_(x, non_blocking=True)
            event = torch.cuda.Event()  # type: ignore[no-untyped-call]
            event.record()
    except Exception as exc:
        fault = device_fault(exc, x.device)
        if fault is None:
            raise
        raise fault from exc
    await wait_for_event(event)
    return to_numpy(host)
