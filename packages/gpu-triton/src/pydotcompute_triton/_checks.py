"""Argument checks shared by the torch backend, the Triton launchers and the ring.

Messages follow pydotcompute's numpy backend word for word where the same mistake is
possible there ("minmax_normalize takes a 2-D tensor (rows, width); got shape (3,)"), so
a caller sees the same complaint whichever backend runs.
"""

from __future__ import annotations

from typing import Final

import torch
from pydotcompute.errors import ArgumentTypeError, InvalidArgumentError

__all__ = [
    "KERNEL_FLOAT_DTYPES",
    "check_2d",
    "check_index",
    "check_kernel_float",
    "check_keys",
    "check_n",
    "check_offsets_shape",
    "check_offsets_values",
    "keys_for_modulo",
    "require_tensor",
]

#: Floating dtypes the Triton kernels are compiled for (arithmetic is float32 inside).
KERNEL_FLOAT_DTYPES: Final = (torch.float32, torch.float16, torch.bfloat16)


def require_tensor(x: object, what: str) -> torch.Tensor:
    """Return ``x`` if it is a tensor; raise ``TypeError`` naming ``what`` otherwise."""
    if not isinstance(x, torch.Tensor):
        raise ArgumentTypeError(f"{what} must be a torch.Tensor; got {type(x).__name__}")
    return x


def check_2d(x: torch.Tensor, op: str) -> None:
    """Raise ``ValueError`` unless ``x`` is 2-D (rows, width)."""
    if x.dim() != 2:
        raise InvalidArgumentError(
            f"{op} takes a 2-D tensor (rows, width); got shape {tuple(x.shape)}"
        )


def check_index(index: torch.Tensor, op: str = "take_rows") -> torch.Tensor:
    """``index`` if it is 1-D integers (an empty one as int64); raise otherwise
    (``ValueError`` for the shape, ``TypeError`` for the dtype)."""
    if index.dim() != 1:
        raise InvalidArgumentError(f"{op} index must be 1-D; got shape {tuple(index.shape)}")
    if index.numel() == 0:
        return index.to(torch.int64)
    if index.dtype.is_floating_point or index.dtype.is_complex or index.dtype == torch.bool:
        raise ArgumentTypeError(f"{op} index must be integers; got dtype {index.dtype}")
    return index


def check_kernel_float(x: torch.Tensor, op: str) -> None:
    """Raise ``TypeError`` unless ``x`` has a dtype the Triton kernels are compiled for."""
    if x.dtype not in KERNEL_FLOAT_DTYPES:
        raise ArgumentTypeError(
            f"{op} takes float32, float16 or bfloat16 tensors; got {x.dtype} "
            "(the backends convert other dtypes before calling the kernels)"
        )


def check_offsets_shape(offsets: torch.Tensor, op: str = "segment_sum") -> None:
    """Raise ``ValueError`` unless ``offsets`` is a non-empty 1-D integer tensor."""
    if offsets.dim() != 1 or offsets.numel() == 0:
        raise InvalidArgumentError(
            f"{op} offsets must be 1-D with at least one entry; got shape {tuple(offsets.shape)}"
        )
    if offsets.dtype.is_floating_point or offsets.dtype.is_complex or offsets.dtype == torch.bool:
        raise InvalidArgumentError(f"{op} offsets must be integers; got dtype {offsets.dtype}")


def check_offsets_values(offsets: torch.Tensor, rows: int, op: str = "segment_sum") -> None:
    """Raise ``ValueError`` unless ``offsets`` is non-decreasing and within ``[0, rows]``.

    Synchronises with the device once (it reads one boolean back to the host).
    """
    offs = offsets.to(torch.int64)
    bad = (offs[0] < 0) | (offs[-1] > rows)
    if offs.numel() > 1:
        bad = bad | (offs[1:] < offs[:-1]).any()
    if bool(bad):
        shown = offs.tolist() if offs.numel() <= 16 else f"a tensor of {offs.numel()} entries"
        raise InvalidArgumentError(
            f"{op} offsets must be non-decreasing and within [0, {rows}]; got {shown}"
        )


def check_n(n: object, op: str = "partition") -> int:
    """Return ``n`` as an int, raising ``TypeError``/``ValueError`` unless it is an int >= 1."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise ArgumentTypeError(f"{op} n must be an int; got {type(n).__name__}")
    if n < 1:
        raise InvalidArgumentError(f"{op} n must be at least 1; got {n}")
    return n


def check_keys(keys: torch.Tensor, op: str = "partition") -> None:
    """Raise unless ``keys`` is a 1-D integer tensor (``ValueError`` / ``TypeError``)."""
    if keys.dim() != 1:
        raise InvalidArgumentError(f"{op} keys must be 1-D; got shape {tuple(keys.shape)}")
    if keys.dtype.is_floating_point or keys.dtype.is_complex or keys.dtype == torch.bool:
        raise ArgumentTypeError(f"{op} keys must be integers; got dtype {keys.dtype}")


def keys_for_modulo(keys: torch.Tensor, n: int) -> torch.Tensor:
    """Return int64 keys whose Python modulo by ``n`` equals that of ``keys``.

    int64 keys are returned as they are; narrower integers are widened (one device copy);
    uint64 keys, which int64 cannot hold, are replaced by their bucket ``key % n``
    (computed exactly from the two's-complement view).
    """
    if keys.dtype == torch.int64:
        return keys
    if keys.dtype == torch.uint64:
        signed = keys.view(torch.int64)
        wrap = (1 << 64) % n  # a uint64 key k read as int64 is k - 2**64 when negative
        buckets = torch.remainder(signed, n)
        return torch.where(signed < 0, torch.remainder(buckets + wrap, n), buckets)
    return keys.to(torch.int64)
