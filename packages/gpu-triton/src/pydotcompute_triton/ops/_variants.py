"""Every compiled variant of every kernel in this package, for ahead-of-time compile checks.

Derived from the same tables the launchers pick from (tiles, dtypes, reductions, key
dtypes, ring element sizes), so a new tile or dtype is checked as soon as it is used.
Integer arguments are left out of the constexprs: :meth:`KernelVariant.source` types
them as ``i32`` or ``i64``, or pins them to the constant 1 as Triton's launcher does
for arguments equal to 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from triton.compiler import ASTSource

from .._checks import KERNEL_FLOAT_DTYPES
from ._utils import COLUMN_BLOCKS, row_tiles, triton_dtype_name
from .minmax_normalize import _minmax_normalize_kernel
from .partition import BLOCK as PARTITION_BLOCK
from .partition import KEY_DTYPES, _partition_hist_kernel, _partition_scatter_kernel
from .ring_pop import _ring_pop_kernel
from .ring_push import _ring_push_kernel
from .row_reduce import REDUCTIONS, _row_reduce_kernel
from .segment_sum import _segment_sum_kernel, segment_tile

__all__ = ["IntFlavour", "KernelVariant", "kernel_variants"]

IntFlavour = Literal["i32", "i64", "one"]

# Element types the ring kernels copy (DeviceRing views its storage as these).
_RING_BITS = ("i16", "i32", "i64")


@dataclass(frozen=True)
class KernelVariant:
    """One kernel with its pointer element types and constexpr values fixed."""

    kernel: Any  #: the @triton.jit function
    pointers: dict[str, str] = field(hash=False)  #: pointer argument -> "*fp32" etc.
    constexprs: dict[str, Any] = field(hash=False)  #: constexpr argument -> value

    @property
    def name(self) -> str:
        """``kernel[ptr types, constexprs]``, for test ids and messages."""
        ptrs = ",".join(self.pointers.values())
        consts = ",".join(f"{k}={v}" for k, v in self.constexprs.items())
        return f"{self.kernel.__name__}[{ptrs}|{consts}]"

    @property
    def block_extreme(self) -> bool:
        """Whether this variant uses the smallest or largest column block."""
        block = self.constexprs.get("BLOCK_N", self.constexprs.get("BLOCK_C"))
        return block is None or block in (COLUMN_BLOCKS[0], COLUMN_BLOCKS[-1])

    def source(self, ints: IntFlavour) -> ASTSource:
        """The Triton source to compile, integer arguments typed as ``ints``."""
        signature: dict[str, str] = {}
        constexprs = dict(self.constexprs)
        for arg in self.kernel.arg_names:
            if arg in self.pointers:
                signature[arg] = self.pointers[arg]
            elif arg in self.constexprs:
                signature[arg] = "constexpr"
            elif ints == "one":
                signature[arg] = "constexpr"
                constexprs[arg] = 1
            else:
                signature[arg] = ints
        return ASTSource(self.kernel, signature, constexprs=constexprs)


def _tile_constexprs() -> list[dict[str, Any]]:
    return [
        {"BLOCK_M": t.block_m, "BLOCK_N": t.block_n, "SINGLE_PASS": t.single_pass}
        for t in row_tiles()
    ]


def kernel_variants() -> list[KernelVariant]:
    """Every (kernel, pointer types, constexprs) the launchers can launch."""
    out: list[KernelVariant] = []
    floats = [triton_dtype_name(d) for d in KERNEL_FLOAT_DTYPES]
    for dt in floats:
        for tile in _tile_constexprs():
            out.append(
                KernelVariant(
                    _minmax_normalize_kernel,
                    {"x_ptr": f"*{dt}", "out_ptr": f"*{dt}"},
                    tile,
                )
            )
            for op in range(len(REDUCTIONS)):
                out.append(
                    KernelVariant(
                        _row_reduce_kernel,
                        {"x_ptr": f"*{dt}", "out_ptr": "*fp32"},
                        {"OP": op, **tile},
                    )
                )
        for block_c in COLUMN_BLOCKS:
            block_r, block_c = segment_tile(block_c)
            out.append(
                KernelVariant(
                    _segment_sum_kernel,
                    {"x_ptr": f"*{dt}", "offsets_ptr": "*i64", "out_ptr": "*fp32"},
                    {"BLOCK_R": block_r, "BLOCK_C": block_c},
                )
            )
    for key in (triton_dtype_name(d) for d in KEY_DTYPES):
        block = {"BLOCK": PARTITION_BLOCK}
        out.append(
            KernelVariant(
                _partition_hist_kernel,
                {"keys_ptr": f"*{key}", "hist_ptr": "*i32"},
                block,
            )
        )
        out.append(
            KernelVariant(
                _partition_scatter_kernel,
                {
                    "keys_ptr": f"*{key}",
                    "hist_ptr": "*i32",
                    "scan_ptr": "*i64",
                    "perm_ptr": "*i64",
                    "counts_ptr": "*i64",
                    "offsets_ptr": "*i64",
                },
                block,
            )
        )
    ring_tiles = sorted({(t.block_m, t.block_n) for t in row_tiles()})
    for bits in _RING_BITS:
        for block_m, block_n in ring_tiles:
            tile = {"BLOCK_M": block_m, "BLOCK_N": block_n}
            out.append(
                KernelVariant(
                    _ring_push_kernel,
                    {
                        "rows_ptr": f"*{bits}",
                        "meta_ptr": "*i64",
                        "ring_ptr": f"*{bits}",
                        "ring_meta_ptr": "*i64",
                        "state_ptr": "*i64",
                        "accepted_ptr": "*i64",
                    },
                    tile,
                )
            )
            out.append(
                KernelVariant(
                    _ring_pop_kernel,
                    {
                        "ring_ptr": f"*{bits}",
                        "ring_meta_ptr": "*i64",
                        "out_ptr": f"*{bits}",
                        "out_meta_ptr": "*i64",
                        "state_ptr": "*i64",
                        "count_ptr": "*i64",
                    },
                    tile,
                )
            )
    return out
