"""GPU benchmark fixtures: skip without CUDA, the device's peak memory bandwidth, timing.

Collected only when benchmarks are asked for (``-o python_files=bench_*.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import torch

# Peak DRAM bandwidth in bytes/s by device name (vendor data sheets). Matched on the
# lower-cased torch.cuda.get_device_name(); anything else is measured.
PEAK_BANDWIDTH = [
    (("h200",), 4.8e12),
    (("h100", "pcie"), 2.0e12),
    (("h100", "hbm3"), 3.35e12),  # "NVIDIA H100 80GB HBM3" is the SXM part
    (("h100", "sxm"), 3.35e12),
    (("a100",), 2.0e12),
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
        return
    skip = pytest.mark.skip(reason="GPU benchmarks need a CUDA device and compiled Triton")
    for item in items:
        item.add_marker(skip)


def measure_copy_bandwidth(nbytes: int = 1 << 30, repeats: int = 10) -> float:
    """Bytes/s of a large device-to-device torch copy (read + write counted)."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        dst.copy_(src)
    stop.record()
    stop.synchronize()
    return 2 * nbytes * repeats / (start.elapsed_time(stop) / 1e3)


@pytest.fixture(scope="session")
def peak_bandwidth() -> tuple[float, str]:
    """``(bytes/s, source)``: the data-sheet peak for known devices, else a measured copy."""
    name = torch.cuda.get_device_name().lower()
    for keys, peak in PEAK_BANDWIDTH:
        if all(k in name for k in keys):
            return peak, f"table ({torch.cuda.get_device_name()})"
    return measure_copy_bandwidth(), f"measured copy ({torch.cuda.get_device_name()})"


def _timed(fn: Callable[[], Any], iterations: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(iterations):
            fn()
        torch.cuda.synchronize()

    return run


@pytest.fixture(scope="session")
def timed() -> Callable[[Callable[[], Any], int], Callable[[], None]]:
    """``timed(fn, n)``: a benchmark target making ``n`` calls of ``fn`` then one device
    synchronisation, so pytest-benchmark's wall-clock time covers the GPU work and the
    synchronisation is amortised over ``n`` calls."""
    return _timed
