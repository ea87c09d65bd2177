"""Helpers shared by the kernel launchers: tiles per width class, planned launches, the
interpreter.

Compile once: every kernel marks the sizes that vary from batch to batch (row counts,
ring positions) ``do_not_specialize``, so a ragged last batch or a one-row batch runs the
variant the first batch compiled; what stays fixed for a stream (dtype, width, strides)
picks the variant. Launchers build a :class:`Launch` and run it; the compile check
(``tests/test_compile_kernels.py``) builds the same launches and compiles exactly the
variants they would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import torch
import triton
import triton.language as tl
from triton.runtime.interpreter import InterpretedFunction

__all__ = [
    "COLUMN_BLOCKS",
    "LAUNCH_OPTIONS",
    "WIDTH_CLASSES",
    "Launch",
    "RowTile",
    "cdiv",
    "check_launchable",
    "column_block",
    "interpreted",
    "launch_guard",
    "probe_kernel",
    "row_tile",
    "row_tiles",
    "triton_dtype_name",
]


@dataclass(frozen=True)
class RowTile:
    """How a row kernel covers a (rows, width) tensor: one program per ``block_m`` rows."""

    block_m: int  #: rows per program
    block_n: int  #: columns per load
    single_pass: bool  #: the whole row fits in one block (no loop over column blocks)
    num_warps: int = 4  #: warps per program


# The tile and warps per width class: a row of width w uses the first class whose block
# holds it (single pass, the row stays in registers), or past the last one the looped
# tile. Reasoned, not yet measured on a GPU (benchmarks/gpu/bench_kernels.py sweeps the
# neighbours of the table at widths 64 and 1,024, and its figures are what a change here
# should cite): a program holds about 32 values a thread, enough for 128-bit loads
# with several in flight and no register spills; narrow rows take many rows a program
# (a 64-wide float32 row is only 256 bytes), wide ones eight warps so that one program
# still has a whole row's bytes in flight. Powers of four keep the compiled variants to
# six per kernel and dtype while wasting at most three quarters of a block's lanes,
# which a bandwidth-bound kernel mostly does not feel (masked lanes move no bytes).
WIDTH_CLASSES: Final = (
    RowTile(256, 16, True, 4),
    RowTile(64, 64, True, 4),
    RowTile(16, 256, True, 4),
    RowTile(8, 1024, True, 8),
    RowTile(2, 4096, True, 8),
)
_LOOPED: Final = RowTile(1, 4096, False, 8)

#: Column-block widths a row kernel is compiled for, narrowest first.
COLUMN_BLOCKS: Final = tuple(t.block_n for t in WIDTH_CLASSES)

# Options every launch passes besides the tile's warps. FP fusion is off so that no
# multiply-add is contracted into an FMA: results then round exactly like the numpy
# reference (and Triton 3.9 warns when the option is left unset).
LAUNCH_OPTIONS: Final[dict[str, Any]] = {"enable_fp_fusion": False}


def row_tile(width: int) -> RowTile:
    """The tile a row kernel uses for rows of ``width`` columns (``width >= 1``)."""
    for tile in WIDTH_CLASSES:
        if width <= tile.block_n:
            return tile
    return _LOOPED


def row_tiles() -> tuple[RowTile, ...]:
    """Every tile :func:`row_tile` can return."""
    return (*WIDTH_CLASSES, _LOOPED)


def column_block(width: int) -> int:
    """The smallest column block that holds ``width`` columns, or the largest one."""
    return row_tile(width).block_n


@dataclass(frozen=True)
class Launch:
    """One kernel launch, planned: what the launcher runs and the compile check compiles.

    ``args`` are the kernel's runtime arguments in order, ``constexprs`` its constexpr
    arguments by name; ``num_warps`` and :data:`LAUNCH_OPTIONS` are the options.
    """

    kernel: Any  #: the @triton.jit function
    grid: tuple[int, ...]
    args: tuple[Any, ...]
    constexprs: dict[str, Any]
    num_warps: int = 4

    @property
    def options(self) -> dict[str, Any]:
        return {"num_warps": self.num_warps, **LAUNCH_OPTIONS}

    def __call__(self) -> None:
        """Launch, on the device of the first tensor argument."""
        device = next(a.device for a in self.args if isinstance(a, torch.Tensor))
        with launch_guard(device):
            self.kernel[self.grid](*self.args, **self.constexprs, **self.options)


def cdiv(a: int, b: int) -> int:
    """Ceiling division of non-negative ints."""
    return -(-a // b)


_TRITON_DTYPE_NAMES: Final = {
    torch.float32: "fp32",
    torch.float16: "fp16",
    torch.bfloat16: "bf16",
    torch.int16: "i16",
    torch.int32: "i32",
    torch.int64: "i64",
}


def triton_dtype_name(dtype: torch.dtype) -> str:
    """Triton's signature name for ``dtype`` (``torch.float16`` -> ``"fp16"``)."""
    return _TRITON_DTYPE_NAMES[dtype]


@triton.jit
def probe_kernel(out_ptr):  # type: ignore[no-untyped-def]
    """Does nothing useful: its type tells whether this module's kernels are interpreted."""
    tl.store(out_ptr, 0)


def interpreted() -> bool:
    """Whether this package's kernels run in the Triton interpreter (``TRITON_INTERPRET=1``)."""
    return isinstance(probe_kernel, InterpretedFunction)


def check_launchable(x: torch.Tensor, what: str) -> None:
    """Raise unless Triton can launch on ``x``'s device in this process.

    Compiled kernels need CUDA tensors; interpreted ones (``TRITON_INTERPRET=1``) take CPU
    tensors. This check names the culprit instead of letting Triton fail obscurely.

    Raises:
        TritonUnavailableError: ``x`` lives where this process's kernels cannot reach it.
    """
    if x.device.type == "cuda" or interpreted():
        return
    from .._errors import TritonUnavailableError

    raise TritonUnavailableError(
        f"{what} is on {x.device}, but Triton kernels here are compiled for CUDA; move it to "
        "a CUDA device, or set TRITON_INTERPRET=1 before triton is first imported to run "
        "the kernels on CPU tensors"
    )


@contextlib.contextmanager
def launch_guard(device: torch.device | None = None) -> Iterator[None]:
    """Context for a kernel launch: under ``device`` when it is a CUDA device (Triton
    launches on the current device and stream, which need not be the tensor's), and under
    the interpreter with numpy's FP warnings silenced.

    The interpreter evaluates kernels with numpy, which warns on ``inf - inf`` or ``0 / 0``;
    a GPU computes the same IEEE results silently, and so must the interpreter (warnings
    are errors in this project's tests).
    """
    with contextlib.ExitStack() as stack:
        if device is not None and device.type == "cuda":
            stack.enter_context(torch.cuda.device(device))
        if interpreted():
            stack.enter_context(np.errstate(all="ignore"))
        yield
