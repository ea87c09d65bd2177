"""Ray Compiled Graphs against plain actor calls, for bench_ray: the guide's two steps as
a compiled two-actor graph, per 4,096 x 64 batch and per record. Run in a process of its
own (``python _ray_compiled.py ADDRESS``) that joins the benchmark's Ray and prints one
JSON object: on this machine a compiled graph's teardown can hang, and the process's
exit, not teardown, then frees its actors."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import numpy as np
import ray

STEPS_BATCH = 50
STEPS_RECORD = 300
TIMEOUT_S = 60.0


@ray.remote
class Step:
    def __init__(self, step: str) -> None:
        self.step = step

    def run(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if self.step == "normalize":
            lo = x.min(axis=1, keepdims=True)
            span = x.max(axis=1, keepdims=True) - lo
            return np.where(span > 0, (x - lo) / np.where(span > 0, span, 1), 0.0)
        return x.mean(axis=1)


def per_step(call: Any, x: np.ndarray[Any, Any], steps: int) -> float:
    call(x)  # warm up
    started = time.perf_counter()
    for _ in range(steps):
        call(x)
    return (time.perf_counter() - started) / steps


def main(address: str) -> None:
    ray.init(address=address, log_to_driver=False)
    from ray.dag import InputNode

    batch = np.random.default_rng(0).random((4096, 64), dtype=np.float32)
    record = batch[:1]
    figures: dict[str, Any] = {}
    first, second = Step.remote("normalize"), Step.remote("mean")
    ray.get([first.__ray_ready__.remote(), second.__ray_ready__.remote()])

    def plain(x: np.ndarray[Any, Any]) -> Any:
        return ray.get(second.run.remote(first.run.remote(x)))

    figures["plain_batch_ms"] = per_step(plain, batch, STEPS_BATCH) * 1e3
    figures["plain_record_us"] = per_step(plain, record, STEPS_RECORD) * 1e6
    try:
        with InputNode() as given:
            graph = second.run.bind(first.run.bind(given))
        began = time.perf_counter()
        compiled = graph.experimental_compile()
        figures["compile_s"] = time.perf_counter() - began
        began = time.perf_counter()
        compiled.execute(batch).get(timeout=TIMEOUT_S)
        figures["first_step_s"] = time.perf_counter() - began

        def run(x: np.ndarray[Any, Any]) -> Any:
            return compiled.execute(x).get(timeout=TIMEOUT_S)

        figures["compiled_batch_ms"] = per_step(run, batch, STEPS_BATCH) * 1e3
        figures["compiled_record_us"] = per_step(run, record, STEPS_RECORD) * 1e6
    except Exception as exc:  # the figure is why it did not run
        figures["compiled_error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(figures), flush=True)
    os._exit(0)  # no teardown: see the module doc


if __name__ == "__main__":
    main(sys.argv[1])
