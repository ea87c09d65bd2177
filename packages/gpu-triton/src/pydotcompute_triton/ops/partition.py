"""Stable partition of keys into ``n`` buckets by ``key % n`` (Python modulo).

Returns ``(counts, offsets, permutation)`` as int64, the numpy backend's convention:
``counts`` has ``n`` entries, ``offsets`` ``n + 1`` (``offsets[0] == 0``), and
``keys[permutation[offsets[b]:offsets[b+1]]]`` are bucket ``b``'s keys in input order.

A counting sort in four launches and no host synchronisation:

1. ``torch.zeros`` clears a ``(n, blocks)`` int32 table of per-block bucket counts;
2. ``_partition_hist_kernel``: each program ranks its ``BLOCK`` keys among equal buckets
   (a ``BLOCK x BLOCK`` comparison) and the last key of each bucket writes the count; no
   atomics, so the result does not depend on scheduling;
3. ``torch.cumsum`` over the table, bucket-major: entry ``(b, p)`` becomes the end of
   program ``p``'s keys within the output of bucket ``b``;
4. ``_partition_scatter_kernel``: each key goes to ``start(b, p) + rank``; the programs
   also write ``counts`` and ``offsets`` from the scanned table.

Scratch memory is ``12 * n * ceil(len(keys) / BLOCK)`` bytes (int32 table plus its int64
scan), e.g. 48 MiB for a million keys into 1024 buckets: for many buckets and many keys
prefer the torch backend, whose sort needs no table.
"""

from __future__ import annotations

from typing import Final

import torch
import triton
import triton.language as tl

from .._checks import check_keys, check_n, keys_for_modulo, require_tensor
from ._utils import Launch, cdiv, check_launchable, launch_guard

__all__ = ["BLOCK", "KEY_DTYPES", "partition", "plan_partition"]

# Keys per program. The rank step compares every pair in the block: BLOCK**2 = 4096
# booleans, the register budget of a narrow row-kernel tile (_utils.WIDTH_CLASSES).
BLOCK: Final = 64

#: Key dtypes the kernels read directly; other integer keys are widened first.
KEY_DTYPES: Final = (torch.int32, torch.int64)


@triton.jit  # type: ignore[untyped-decorator]
def _bucket_and_rank(keys_ptr, n_keys, keys_stride, n, BLOCK: tl.constexpr):  # type: ignore[no-untyped-def]
    """Bucket of each key of this program's block, its rank among equal buckets, and more."""
    i = tl.arange(0, BLOCK)
    idx = tl.program_id(0).to(tl.int64) * BLOCK + i
    valid = idx < n_keys
    key = tl.load(keys_ptr + idx * keys_stride, mask=valid, other=0).to(tl.int64)
    bucket = key % n  # C remainder: the sign of the key ...
    bucket = tl.where(bucket < 0, bucket + n, bucket)  # ... made Python's
    same = (bucket[:, None] == bucket[None, :]) & valid[:, None] & valid[None, :]
    before = tl.sum((same & (i[None, :] < i[:, None])).to(tl.int32), axis=1)
    after = tl.sum((same & (i[None, :] > i[:, None])).to(tl.int32), axis=1)
    return idx, valid, bucket, before, after


@triton.jit(do_not_specialize=["n_keys", "n_blocks"])  # type: ignore[untyped-decorator]
def _partition_hist_kernel(  # type: ignore[no-untyped-def]
    keys_ptr,
    hist_ptr,
    n_keys,
    keys_stride,
    n,
    n_blocks,
    BLOCK: tl.constexpr,
):
    _, valid, bucket, before, after = _bucket_and_rank(keys_ptr, n_keys, keys_stride, n, BLOCK)
    last = valid & (after == 0)
    cell = bucket * n_blocks + tl.program_id(0)
    tl.store(hist_ptr + cell, before + 1, mask=last)


@triton.jit(  # type: ignore[untyped-decorator]
    do_not_specialize=["n_keys", "n_blocks", "buckets_per_program"]
)
def _partition_scatter_kernel(  # type: ignore[no-untyped-def]
    keys_ptr,
    hist_ptr,
    scan_ptr,
    perm_ptr,
    counts_ptr,
    offsets_ptr,
    n_keys,
    keys_stride,
    n,
    n_blocks,
    buckets_per_program,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    idx, valid, bucket, before, _ = _bucket_and_rank(keys_ptr, n_keys, keys_stride, n, BLOCK)
    cell = bucket * n_blocks + pid
    end = tl.load(scan_ptr + cell, mask=valid, other=0)
    count = tl.load(hist_ptr + cell, mask=valid, other=0)
    tl.store(perm_ptr + (end - count + before), idx, mask=valid)
    # counts and offsets: this program's share of the buckets.
    tl.store(offsets_ptr, 0, mask=pid == 0)
    first = pid.to(tl.int64) * buckets_per_program
    stop = tl.minimum(first + buckets_per_program, n)
    j = tl.arange(0, BLOCK)
    for b0 in range(first, stop, BLOCK):
        b = b0 + j
        ok = b < stop
        row = b * n_blocks
        bucket_end = tl.load(scan_ptr + row + n_blocks - 1, mask=ok, other=0)
        bucket_start = tl.load(scan_ptr + row, mask=ok, other=0) - tl.load(
            hist_ptr + row, mask=ok, other=0
        )
        tl.store(offsets_ptr + b + 1, bucket_end, mask=ok)
        tl.store(counts_ptr + b, bucket_end - bucket_start, mask=ok)


def partition(keys: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stable bucketing of ``keys % n``: ``(counts, offsets, permutation)``, int64 on keys' device.

    ``keys`` is a 1-D integer tensor (any stride; int32/int64 are read directly, other
    integer dtypes are widened first, one extra copy). Four launches, no host sync;
    none but the result allocation for empty ``keys``.

    Raises:
        TypeError: ``keys`` is not an integer tensor, or ``n`` is not an int.
        ValueError: ``n < 1``, or ``keys`` is not 1-D.
    """
    keys = require_tensor(keys, "partition keys")
    n = check_n(n)
    check_keys(keys)
    check_launchable(keys, "partition keys")
    device = keys.device
    n_keys = keys.numel()
    counts = torch.empty((n,), dtype=torch.int64, device=device)
    offsets = torch.empty((n + 1,), dtype=torch.int64, device=device)
    perm = torch.empty((n_keys,), dtype=torch.int64, device=device)
    if n_keys == 0:
        counts.zero_()
        offsets.zero_()
        return counts, offsets, perm
    if keys.dtype not in KEY_DTYPES:
        keys = keys_for_modulo(keys, n)
    n_blocks = cdiv(n_keys, BLOCK)
    hist = torch.zeros((n * n_blocks,), dtype=torch.int32, device=device)
    scan = torch.empty((n * n_blocks,), dtype=torch.int64, device=device)
    hist_launch, scatter_launch = plan_partition(keys, n, hist, scan, perm, counts, offsets)
    hist_launch()
    with launch_guard(device):
        torch.cumsum(hist, 0, dtype=torch.int64, out=scan)
    scatter_launch()
    return counts, offsets, perm


def plan_partition(
    keys: torch.Tensor,
    n: int,
    hist: torch.Tensor,
    scan: torch.Tensor,
    perm: torch.Tensor,
    counts: torch.Tensor,
    offsets: torch.Tensor,
) -> tuple[Launch, Launch]:
    """The two launches of :func:`partition` on int32/int64 ``keys`` (not empty): the
    histogram into ``hist``, then (after ``scan`` holds its inclusive int64 cumsum) the
    scatter."""
    n_keys = keys.numel()
    n_blocks = cdiv(n_keys, BLOCK)
    hist_launch = Launch(
        _partition_hist_kernel,
        (n_blocks,),
        (keys, hist, n_keys, keys.stride(0), n, n_blocks),
        {"BLOCK": BLOCK},
    )
    scatter_launch = Launch(
        _partition_scatter_kernel,
        (n_blocks,),
        (
            keys,
            hist,
            scan,
            perm,
            counts,
            offsets,
            n_keys,
            keys.stride(0),
            n,
            n_blocks,
            cdiv(n, n_blocks),
        ),
        {"BLOCK": BLOCK},
    )
    return hist_launch, scatter_launch
