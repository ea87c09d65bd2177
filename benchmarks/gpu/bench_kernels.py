"""Kernel bandwidth as a fraction of the device's peak: minmax_normalize and the ring.

Bytes moved are the bytes each kernel must read and write (65,536 x 1,024 float32 rows,
256 MiB): minmax_normalize reads the batch once and writes it once (its single-pass
tile holds a row); a ring push reads the rows and writes the ring; a pop the reverse.
"""

from __future__ import annotations

from typing import Any

import torch

ROWS, WIDTH = 65_536, 1_024
BATCH_BYTES = ROWS * WIDTH * 4
ITERATIONS = 20


def _record(benchmark: Any, peak: tuple[float, str], bytes_per_call: float, **extra: Any) -> None:
    seconds = benchmark.stats.stats.median / ITERATIONS
    bandwidth = bytes_per_call / seconds
    benchmark.extra_info.update(
        bytes_per_call=bytes_per_call,
        seconds_per_call=seconds,
        bandwidth_bytes_per_s=bandwidth,
        peak_bytes_per_s=peak[0],
        peak_source=peak[1],
        fraction_of_peak=bandwidth / peak[0],
        device=torch.cuda.get_device_name(),
        **extra,
    )


def test_minmax_normalize_bandwidth(
    benchmark: Any, peak_bandwidth: tuple[float, str], timed: Any
) -> None:
    from pydotcompute_triton.ops import minmax_normalize

    x = torch.randn((ROWS, WIDTH), device="cuda")
    minmax_normalize(x)  # compile outside the timing
    benchmark.pedantic(timed(lambda: minmax_normalize(x), ITERATIONS), rounds=10, warmup_rounds=1)
    _record(benchmark, peak_bandwidth, 2 * BATCH_BYTES, shape=[ROWS, WIDTH])


def test_ring_push_bandwidth(benchmark: Any, peak_bandwidth: tuple[float, str], timed: Any) -> None:
    from pydotcompute_triton import DeviceRing

    # drop_oldest: every push moves the whole batch, however full the ring is.
    ring = DeviceRing(ROWS, WIDTH, device="cuda", backpressure="drop_oldest")
    rows = torch.randn((ROWS, WIDTH), device="cuda")
    ring.push_device(rows)
    benchmark.pedantic(
        timed(lambda: ring.push_device(rows), ITERATIONS), rounds=10, warmup_rounds=1
    )
    _record(benchmark, peak_bandwidth, 2 * BATCH_BYTES, shape=[ROWS, WIDTH], launches_per_call=1)


def test_ring_push_pop_bandwidth(
    benchmark: Any, peak_bandwidth: tuple[float, str], timed: Any
) -> None:
    from pydotcompute_triton import DeviceRing

    ring = DeviceRing(ROWS, WIDTH, device="cuda")
    rows = torch.randn((ROWS, WIDTH), device="cuda")

    def round_trip() -> None:
        ring.push_device(rows)
        ring.pop_device(ROWS)

    round_trip()
    benchmark.pedantic(timed(round_trip, ITERATIONS), rounds=10, warmup_rounds=1)
    _record(benchmark, peak_bandwidth, 4 * BATCH_BYTES, shape=[ROWS, WIDTH], launches_per_call=2)
    assert len(ring) == 0  # every push was popped: the figures are full-batch copies
