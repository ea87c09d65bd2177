"""Replay a fixed-shape micro-batch step as one CUDA graph (CUDA tensors only).

Each Triton launch costs the host roughly 10 us of Python; a graph replay launches the
whole recorded sequence at once. This path is guarded: it refuses CPU tensors (the
interpreter has no graphs) and is exercised only by the ``gpu``-marked tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import torch
from pydotcompute.errors import InvalidArgumentError

__all__ = ["CapturedStep"]

_R = TypeVar("_R")


class CapturedStep(Generic[_R]):
    """``fn`` recorded once as a CUDA graph for inputs shaped like ``example``.

    Calling the step copies the input into the graph's static input and replays the
    graph; it returns the graph's static output, which the next call overwrites (clone it
    to keep it). ``fn`` must be capturable: launches and device allocations only, no host
    synchronisation (so ``segment_sum`` needs ``check=False`` and rings ``push_device`` /
    ``pop_device``), and the same shapes every call.

    Raises (constructor):
        ValueError: ``example`` is not a CUDA tensor.
    """

    def __init__(
        self, fn: Callable[[torch.Tensor], _R], example: torch.Tensor, warmup: int = 2
    ) -> None:
        if not (isinstance(example, torch.Tensor) and example.is_cuda):
            where = example.device if isinstance(example, torch.Tensor) else type(example).__name__
            raise InvalidArgumentError(
                f"CapturedStep needs a CUDA example tensor; got one on {where}"
            )
        self._input = example.clone()
        # Warm up on the current stream, not a side one: a DeviceRing in ``fn`` is bound to
        # the stream it was made on (its push and pop are ordered by it alone).
        for _ in range(warmup):  # compiles the kernels outside the capture
            fn(self._input)
        torch.cuda.current_stream(example.device).synchronize()
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph):
            self._output = fn(self._input)

    def __call__(self, x: torch.Tensor) -> _R:
        """Run the recorded step on ``x`` (same shape, dtype and device as the example)."""
        if x.shape != self._input.shape or x.dtype != self._input.dtype:
            raise InvalidArgumentError(
                f"CapturedStep was recorded for {tuple(self._input.shape)} {self._input.dtype}; "
                f"got {tuple(x.shape)} {x.dtype}"
            )
        self._input.copy_(x)
        self._graph.replay()
        return self._output
