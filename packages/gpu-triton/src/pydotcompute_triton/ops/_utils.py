"""Helpers shared by the kernel launchers: tile choice, launch options, the interpreter.

Tuning constants below are reasoned, not yet measured on a GPU (this package was written
on a machine without one); ``benchmarks/gpu/bench_kernels.py`` measures the kernels that use
them, and the numbers it records are what a change to these constants should cite.
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
    "TILE_ELEMENTS",
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

# Elements one program holds in registers per tile. 4096 float32 values are 16 KiB: with
# num_warps=4 (128 threads) that is 32 values a thread, enough for 128-bit vector loads
# and a few loads in flight without spilling registers.
TILE_ELEMENTS: Final = 4096

# Column-block widths a row kernel is compiled for. A row of width w uses the smallest
# block that holds it (single pass, the row stays in registers) or, beyond the last, the
# last block in a loop over the row. Powers of four keep the compiled variants to five
# per kernel and dtype while wasting at most three quarters of a block's lanes, which a
# bandwidth-bound kernel mostly does not feel (masked lanes move no bytes).
COLUMN_BLOCKS: Final = (16, 64, 256, 1024, 4096)

# Options every launch passes. num_warps=4 is Triton's default, spelled out so that the
# compile check (tests/test_compile_kernels.py) compiles exactly what runs. FP fusion is
# off so that no multiply-add is contracted into an FMA: results then round exactly like
# the numpy reference (and Triton 3.9 warns when the option is left unset).
LAUNCH_OPTIONS: Final[dict[str, Any]] = {"num_warps": 4, "enable_fp_fusion": False}


@dataclass(frozen=True)
class RowTile:
    """How a row kernel covers a (rows, width) tensor: one program per ``block_m`` rows."""

    block_m: int  #: rows per program
    block_n: int  #: columns per load
    single_pass: bool  #: the whole row fits in one block (no loop over column blocks)


def row_tile(width: int) -> RowTile:
    """The tile a row kernel uses for rows of ``width`` columns (``width >= 1``)."""
    for block_n in COLUMN_BLOCKS:
        if width <= block_n:
            return RowTile(TILE_ELEMENTS // block_n, block_n, True)
    return RowTile(1, COLUMN_BLOCKS[-1], False)


def row_tiles() -> tuple[RowTile, ...]:
    """Every tile :func:`row_tile` can return: the variants the compile check builds."""
    singles = tuple(RowTile(TILE_ELEMENTS // b, b, True) for b in COLUMN_BLOCKS)
    return (*singles, RowTile(1, COLUMN_BLOCKS[-1], False))


def column_block(width: int) -> int:
    """The smallest column block that holds ``width`` columns, or the largest one."""
    for block_n in COLUMN_BLOCKS:
        if width <= block_n:
            return block_n
    return COLUMN_BLOCKS[-1]


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
def launch_guard() -> Iterator[None]:
    """Context for a kernel launch: under the interpreter, silence numpy's FP warnings.

    The interpreter evaluates kernels with numpy, which warns on ``inf - inf`` or ``0 / 0``;
    a GPU computes the same IEEE results silently, and so must the interpreter (warnings
    are errors in this project's tests). Compiled launches are not affected.
    """
    if interpreted():
        with np.errstate(all="ignore"):
            yield
    else:
        yield
