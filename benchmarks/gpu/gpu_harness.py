"""What the GPU benchmarks share: the mode, inputs rotated past the L2 cache, timing, and
the bandwidth references every figure is a fraction of (fixtures in conftest.py).

Two modes, one code path. On a CUDA device (``nox -s gpu``, ``run_gpu_checks.sh``):
65,536 rows at widths 64 and 1,024. With ``TRITON_INTERPRET=1`` (``run_gpu_checks.sh
--interpret``, CI): the same benchmarks on the CPU at a few rows, proving the plumbing
(their figures mean nothing).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any

import torch

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
WIDTHS = (64, 1024)

# Peak DRAM bandwidth in bytes/s by device name (vendor data sheets), and L2 size in
# bytes. Matched on the lower-cased torch.cuda.get_device_name().
DATA_SHEET = [
    (("h200",), 4.8e12, 60 << 20),
    (("h100", "pcie"), 2.0e12, 50 << 20),
    (("h100",), 3.35e12, 50 << 20),  # "NVIDIA H100 80GB HBM3" is the SXM part
    (("a100",), 2.0e12, 40 << 20),
]


@dataclasses.dataclass(frozen=True)
class Mode:
    """Where and how big the benchmarks run."""

    device: str  #: "cuda", or "cpu" under the interpreter
    rows: int  #: records per batch
    batches: int  #: batches per pipeline round
    iterations: int  #: kernel calls per timed round
    rounds: int
    l2_bytes: int  #: inputs rotate through more than this many bytes
    device_name: str
    peak_bytes_per_s: float | None  #: data-sheet DRAM bandwidth (None: unknown device)
    peak_source: str
    interpreted: bool


def current_mode() -> Mode:
    if INTERPRET:
        return Mode("cpu", 64, 3, 2, 1, 1 << 20, "CPU (Triton interpreter)", None, "none", True)
    name = torch.cuda.get_device_name()
    lowered = name.lower()
    for keys, peak, l2 in DATA_SHEET:
        if all(k in lowered for k in keys):
            return Mode("cuda", 65_536, 32, 20, 5, l2, name, peak, f"data sheet ({name})", False)
    l2 = int(getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 64 << 20))
    return Mode("cuda", 65_536, 32, 20, 5, l2, name, None, "unknown device", False)


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def seconds_per_call(fn: Callable[[int], Any], calls: int, device: str) -> float:
    """Wall seconds per call of ``fn(i)`` over ``calls`` calls, the device drained
    before and after (so queued work is inside the window)."""
    synchronize(device)
    start = time.perf_counter()
    for i in range(calls):
        fn(i)
    synchronize(device)
    return (time.perf_counter() - start) / calls


class Rotation:
    """Inputs of one shape, enough of them to exceed the L2 cache together: call ``i``
    reads ``inputs[i % n]``, so no call finds its input in L2 from the one before."""

    def __init__(self, mode: Mode, shape: tuple[int, int], dtype: torch.dtype = torch.float32):
        nbytes = shape[0] * shape[1] * torch.tensor([], dtype=dtype).element_size()
        count = max(2, -(-2 * mode.l2_bytes // max(nbytes, 1)) + 1)
        gen = torch.Generator(device="cpu").manual_seed(7)
        self.inputs = [
            torch.randn(shape, generator=gen).to(device=mode.device, dtype=dtype)
            for _ in range(count)
        ]
        self.nbytes = nbytes

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.inputs[i % len(self.inputs)]


def measure_copy_bandwidth(mode: Mode, nbytes: int = 1 << 30) -> float:
    """Bytes/s of a large device-to-device copy (read + write counted)."""
    nbytes = min(nbytes, 64 << 20) if mode.interpreted else nbytes
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=mode.device)
    dst = torch.empty_like(src)
    per_call = seconds_per_call(lambda i: dst.copy_(src), 10, mode.device)
    return 2 * nbytes / per_call


def measure_h2d_bandwidth(mode: Mode, nbytes: int = 256 << 20) -> float:
    """Bytes/s of host-to-device copies from pinned memory (on the CPU: a host copy)."""
    nbytes = min(nbytes, 16 << 20) if mode.interpreted else nbytes
    host = torch.empty(nbytes // 4, dtype=torch.float32, pin_memory=mode.device == "cuda")
    dst = torch.empty(nbytes // 4, dtype=torch.float32, device=mode.device)
    per_call = seconds_per_call(lambda i: dst.copy_(host, non_blocking=True), 10, mode.device)
    return nbytes / per_call


def references_for(mode: Mode) -> dict[str, Any]:
    """The bandwidths every figure is a fraction of."""
    return {
        "device": mode.device_name,
        "peak_bytes_per_s": mode.peak_bytes_per_s,
        "peak_source": mode.peak_source,
        "copy_bytes_per_s": measure_copy_bandwidth(mode),
        "h2d_bytes_per_s": measure_h2d_bandwidth(mode),
        "interpreted": mode.interpreted,
    }


def bandwidth_figures(
    bytes_per_call: float, seconds: float, refs: dict[str, Any]
) -> dict[str, Any]:
    """Bandwidth of a call moving ``bytes_per_call`` in ``seconds``, as bytes/s and as
    fractions of the data-sheet peak and of the measured device-to-device copy."""
    bandwidth = bytes_per_call / seconds
    peak = refs["peak_bytes_per_s"]
    return {
        "bytes_per_call": bytes_per_call,
        "seconds_per_call": seconds,
        "bandwidth_bytes_per_s": bandwidth,
        "fraction_of_peak": bandwidth / peak if peak else None,
        "fraction_of_copy": bandwidth / refs["copy_bytes_per_s"],
        "device": refs["device"],
        "interpreted": refs["interpreted"],
    }


_EAGER: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
_COMPILED: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}


def guide_eager(mode: Mode) -> Callable[[torch.Tensor], torch.Tensor]:
    """The guide's two steps as torch eager ops (the torch backend's, same policies)."""
    if mode.device not in _EAGER:
        from pydotcompute_triton import TorchBackend

        backend = TorchBackend(mode.device)

        def eager(x: torch.Tensor) -> torch.Tensor:
            return backend.row_mean(backend.minmax_normalize(x))

        _EAGER[mode.device] = eager
    return _EAGER[mode.device]


def guide_compiled(mode: Mode) -> Callable[[torch.Tensor], torch.Tensor]:
    """``torch.compile`` of :func:`guide_eager`, one per session (so each shape compiles
    once): Inductor on a GPU; under the interpreter the ``eager`` backend (the plumbing
    only: Inductor's CPU build takes minutes and a C++ compiler)."""
    if mode.device not in _COMPILED:
        backend = "eager" if mode.interpreted else "inductor"
        _COMPILED[mode.device] = torch.compile(guide_eager(mode), backend=backend, dynamic=False)
    return _COMPILED[mode.device]
