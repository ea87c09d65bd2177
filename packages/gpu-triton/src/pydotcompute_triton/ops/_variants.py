"""The launches the compile check compiles: the launchers' own plans, on small CPU tensors.

Every launcher builds a :class:`~._utils.Launch` through a ``plan_*`` function;
:func:`launch_plans` calls the same functions for each dtype, width class and kernel
option the launchers can meet, so the compile check builds exactly the variants real
launches use (Triton derives a variant from the arguments: their types, which integers
are 1 or multiples of 16, which pointers are 16-byte aligned, and the constexprs).
:func:`specialization` reads that derivation from Triton itself, as a launch would on a
GPU, without one. Row counts are left out of it (``do_not_specialize``), so one plan per
width stands for every batch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import torch

from .._checks import KERNEL_FLOAT_DTYPES
from ._utils import Launch, row_tiles
from .minmax_normalize import plan_minmax_normalize
from .normalize_stats import FUSED_MAX_WIDTH, plan_normalize_stats
from .partition import KEY_DTYPES, plan_partition
from .ring_pop import _ring_pop_kernel
from .ring_push import _ring_push_kernel
from .row_reduce import REDUCTIONS, plan_row_reduce
from .segment_sum import plan_segment_sum

__all__ = [
    "ALIGNED_WIDTHS",
    "ODD_WIDTHS",
    "PlannedVariant",
    "Specialization",
    "launch_plans",
    "specialization",
]

#: One width per width class (the last one loops over column blocks), each a multiple
#: of 16 as the benchmark widths are.
ALIGNED_WIDTHS: Final = (*tuple(t.block_n for t in row_tiles()[:-1]), 8192)
#: Widths whose rows are not 16-element aligned: another variant of the same tile.
ODD_WIDTHS: Final = (3, 1000)
_ROWS: Final = 5  # any count: row counts are not specialized on
_RING_BITS: Final = (torch.int16, torch.int32, torch.int64)


@dataclass(frozen=True)
class PlannedVariant:
    """A launch the launchers would make, named for test ids and messages."""

    name: str
    launch: Launch
    float32_aligned: bool  #: float32 rows of an aligned width (compiled for sm_80 too)


def _rows(dtype: torch.dtype, width: int, rows: int = _ROWS) -> torch.Tensor:
    return torch.zeros((rows, width), dtype=dtype)


def launch_plans() -> list[PlannedVariant]:
    """The launches whose variants the compile check builds (see the module doc)."""
    out: list[PlannedVariant] = []

    def add(name: str, launch: Launch, dtype: Any, width: int) -> None:
        aligned = dtype in (torch.float32, torch.int32) and width in ALIGNED_WIDTHS
        out.append(PlannedVariant(name, launch, aligned))

    for dtype in KERNEL_FLOAT_DTYPES:
        dt = str(dtype).removeprefix("torch.")
        widths = ALIGNED_WIDTHS + (ODD_WIDTHS if dtype == torch.float32 else ())
        for width in widths:
            x = _rows(dtype, width)
            add(
                f"minmax_normalize[{dt},w={width}]",
                plan_minmax_normalize(x, x.clone()),
                dtype,
                width,
            )
            ops = REDUCTIONS if dtype == torch.float32 else ("mean", "std")
            for op in ops:
                out32 = torch.zeros(_ROWS, dtype=torch.float32)
                add(f"row_{op}[{dt},w={width}]", plan_row_reduce(x, out32, op), dtype, width)
            if width <= FUSED_MAX_WIDTH:  # the fused preprocess -> compute kernel
                for stats in (("mean",), REDUCTIONS) if width in (64, 1024) else (("mean",),):
                    stats_out = torch.zeros((_ROWS, len(stats)), dtype=torch.float32)
                    add(
                        f"normalize_stats[{dt},w={width},{'+'.join(stats)}]",
                        plan_normalize_stats(x, stats_out, stats),
                        dtype,
                        width,
                    )
            offsets = torch.tensor([0, 2, _ROWS], dtype=torch.int64)
            sums = torch.zeros((2, width), dtype=torch.float32)
            add(f"segment_sum[{dt},w={width}]", plan_segment_sum(x, offsets, sums), dtype, width)
    for key_dtype in KEY_DTYPES:
        keys = torch.arange(100, dtype=key_dtype)
        n, blocks = 7, 2
        hist, scatter = plan_partition(
            keys,
            n,
            torch.zeros(n * blocks, dtype=torch.int32),
            torch.zeros(n * blocks, dtype=torch.int64),
            torch.zeros(100, dtype=torch.int64),
            torch.zeros(n, dtype=torch.int64),
            torch.zeros(n + 1, dtype=torch.int64),
        )
        kd = str(key_dtype).removeprefix("torch.")
        add(f"partition_hist[{kd}]", hist, torch.int32, ALIGNED_WIDTHS[0])
        add(f"partition_scatter[{kd}]", scatter, torch.int32, ALIGNED_WIDTHS[0])
    for bits in _RING_BITS:
        for width in ALIGNED_WIDTHS:
            for meta_width in (0, 2):
                if meta_width and (bits != torch.int32 or width != 64):
                    continue
                name = f"[{str(bits).removeprefix('torch.')},w={width},meta={meta_width}]"
                push, pop = _ring_launches(bits, width, meta_width)
                add("ring_push" + name, push, bits, width)
                add("ring_pop" + name, pop, bits, width)
    return out


def _ring_launches(bits: torch.dtype, width: int, meta_width: int) -> tuple[Launch, Launch]:
    """A DeviceRing's push and pop launches, as :mod:`.ring_push` and :mod:`.ring_pop`
    make them, for a ring of ``width``-wide rows stored as ``bits``."""
    from ._ring_layout import STATE_SIZE
    from ._utils import row_tile

    capacity = 64
    tile = row_tile(width)
    ring = torch.zeros((capacity, width), dtype=bits)
    meta = torch.zeros((capacity, max(meta_width, 1)), dtype=torch.int64)
    state = torch.zeros(STATE_SIZE, dtype=torch.int64)
    count = torch.zeros(1, dtype=torch.int64)
    rows = torch.zeros((_ROWS, width), dtype=bits)
    rows_meta = torch.zeros((_ROWS, max(meta_width, 1)), dtype=torch.int64)
    constexprs = {"BLOCK_M": tile.block_m, "BLOCK_N": tile.block_n}
    push = Launch(
        _ring_push_kernel,
        (1,),
        (
            rows,
            rows_meta,
            ring,
            meta,
            state,
            count,
            _ROWS,
            0,
            width,
            meta_width,
            capacity,
            0,
            rows.stride(0),
            rows.stride(1),
            rows_meta.stride(0),
            rows_meta.stride(1),
        ),
        constexprs,
        tile.num_warps,
    )
    out = torch.zeros((_ROWS, width), dtype=bits)
    pop = Launch(
        _ring_pop_kernel,
        (1,),
        (ring, meta, out, meta, state, count, _ROWS, width, meta_width, capacity),
        constexprs,
        tile.num_warps,
    )
    return push, pop


@dataclass(frozen=True)
class Specialization:
    """The variant a launch compiles: Triton's signature, constexprs, attributes and
    options for it (what ``JITFunction.run`` derives before compiling)."""

    kernel: Any
    signature: dict[str, str]
    constexprs: dict[tuple[int, ...], Any]
    attrs: dict[tuple[int, ...], Any]
    options: Any  #: the backend's options object (num_warps, enable_fp_fusion, ...)

    @property
    def key(self) -> str:
        """Equal for launches that run one compiled variant."""
        return repr(
            (
                self.kernel.__name__,
                sorted(self.signature.items()),
                sorted(self.constexprs.items()),
                sorted(self.attrs.items()),
                sorted(self.options.__dict__.items()),
            )
        )

    def source(self) -> Any:
        """The ``triton.compiler.ASTSource`` to compile."""
        from triton.compiler import ASTSource

        return ASTSource(self.kernel, self.signature, self.constexprs, self.attrs)


def specialization(launch: Launch, target: Any) -> Specialization:
    """The variant ``launch`` would compile for ``target`` (a
    ``triton.backends.compiler.GPUTarget``), derived by Triton's own binder as a launch
    derives it, without a GPU.

    Uses Triton's launch internals (``create_function_from_signature``, ``_pack_args``
    of Triton 3.9): the compile check runs with the pinned Triton for that reason.
    """
    from triton import knobs
    from triton.compiler.compiler import make_backend
    from triton.runtime.jit import create_function_from_signature

    kernel = launch.kernel
    backend = make_backend(target)
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    kwargs = {**launch.constexprs, **launch.options}
    # What JITFunction.run adds to every launch's options.
    kwargs["debug"] = kernel.debug or knobs.runtime.debug
    for knob in ("instrumentation_mode", "fpsan_homomorphic_casts"):
        if hasattr(knobs.compilation, knob):
            kwargs[knob] = getattr(knobs.compilation, knob)
    bound, spec, options = binder(*launch.args, **kwargs)
    options, signature, constexprs, attrs = kernel._pack_args(backend, kwargs, bound, spec, options)
    return Specialization(kernel, signature, constexprs, attrs, options)
