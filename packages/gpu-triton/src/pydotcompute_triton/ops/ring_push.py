"""The :class:`~pydotcompute_triton.DeviceRing` push: copy rows in, move the tail, one launch.

Every program reads ``HEAD``/``TAIL`` from the device state, works out the same accepted
count, and copies its rows (and their metadata) into the slots after the tail, wrapping
around. Programs then take a ticket with an acquire-release ``atomic_add``; the last one
(whose ticket is ``num_programs - 1``) is the only writer of the counters, after every
program has read them, and resets the ticket for the next launch. Nothing is read back to
the host here: the accepted count is left in a one-element device tensor.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._ring_layout import (
    DROPPED,
    HEAD,
    META_BLOCK,
    POLICY_DROP_OLDEST,
    POLICY_REJECT,
    PUSHED,
    REJECTED,
    TAIL,
    TICKET,
)
from ._utils import Launch, RowTile, cdiv

__all__ = ["ring_push"]


@triton.jit  # type: ignore[untyped-decorator]
def _copy_rows(  # type: ignore[no-untyped-def]
    src_ptr,
    dst_ptr,
    src_rows,
    dst_rows,
    ok,
    n_cols,
    src_row_stride,
    src_col_stride,
    dst_row_stride,
    BLOCK_N: tl.constexpr,
):
    """Copy columns ``[0, n_cols)`` of rows ``src_rows`` to rows ``dst_rows`` where ``ok``."""
    cols = tl.arange(0, BLOCK_N)
    src = src_ptr + src_rows[:, None] * src_row_stride
    dst = dst_ptr + dst_rows[:, None] * dst_row_stride
    for start in range(0, n_cols, BLOCK_N):
        c = start + cols
        mask = ok[:, None] & (c[None, :] < n_cols)
        v = tl.load(src + c[None, :].to(tl.int64) * src_col_stride, mask=mask)
        tl.store(dst + c[None, :], v, mask=mask)


@triton.jit(do_not_specialize=["n_in", "first_row", "meta_width", "policy"])  # type: ignore[untyped-decorator]
def _ring_push_kernel(  # type: ignore[no-untyped-def]
    rows_ptr,
    meta_ptr,
    ring_ptr,
    ring_meta_ptr,
    state_ptr,
    accepted_ptr,
    n_in,
    first_row,
    width,
    meta_width,
    capacity,
    policy,
    rows_row_stride,
    rows_col_stride,
    meta_row_stride,
    meta_col_stride,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    head = tl.load(state_ptr + HEAD)
    tail = tl.load(state_ptr + TAIL)
    free = capacity - (tail - head)
    accepted = tl.where(policy == POLICY_DROP_OLDEST, n_in, tl.minimum(free, n_in))
    # Input row i goes to slot (tail + i) % capacity; under drop_oldest only the last
    # `capacity` rows survive, and the launcher starts the grid at `first_row` for that.
    rows = first_row + tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    ok = rows < accepted
    slots = (tail + rows) % capacity
    _copy_rows(
        rows_ptr,
        ring_ptr,
        rows,
        slots,
        ok,
        width,
        rows_row_stride,
        rows_col_stride,
        width,
        BLOCK_N,
    )
    _copy_rows(
        meta_ptr,
        ring_meta_ptr,
        rows,
        slots,
        ok,
        meta_width,
        meta_row_stride,
        meta_col_stride,
        meta_width,
        META_BLOCK,
    )
    # Every thread of this program has read the state and issued its copies; only then
    # may the ticket tell the last program that this one is done with the state.
    tl.debug_barrier()
    ticket = tl.atomic_add(state_ptr + TICKET, 1, sem="acq_rel")
    last = ticket == tl.num_programs(0) - 1
    new_tail = tail + accepted
    new_head = tl.maximum(head, new_tail - capacity)  # drop_oldest evicts the oldest
    rejected = tl.where(policy == POLICY_REJECT, n_in - accepted, 0)
    pushed = tl.load(state_ptr + PUSHED, mask=last, other=0)
    dropped = tl.load(state_ptr + DROPPED, mask=last, other=0)
    refused = tl.load(state_ptr + REJECTED, mask=last, other=0)
    tl.store(state_ptr + HEAD, new_head, mask=last)
    tl.store(state_ptr + TAIL, new_tail, mask=last)
    tl.store(state_ptr + PUSHED, pushed + accepted, mask=last)
    tl.store(state_ptr + DROPPED, dropped + (new_head - head), mask=last)
    tl.store(state_ptr + REJECTED, refused + rejected, mask=last)
    tl.store(state_ptr + TICKET, 0, mask=last)
    tl.store(accepted_ptr, accepted, mask=last)


def ring_push(
    rows: torch.Tensor,
    meta: torch.Tensor,
    ring: torch.Tensor,
    ring_meta: torch.Tensor,
    meta_width: int,
    state: torch.Tensor,
    policy: int,
    tile: RowTile,
) -> torch.Tensor:
    """Launch one push of ``rows`` (and ``meta``) into a ring; return the accepted count.

    The caller (:class:`~pydotcompute_triton.DeviceRing`) has validated every argument:
    ``rows`` is ``(n, width)`` with ``n >= 1`` and the ring's dtype, ``ring`` is contiguous
    ``(capacity, width)``. With ``meta_width`` k > 0, ``meta`` is ``(n, k)`` int64 and
    ``ring_meta`` contiguous ``(capacity, k)`` int64; with k == 0 both may be any
    non-empty int64 tensors (valid pointers the kernel never touches). ``policy`` is one
    of the ``POLICY_*`` codes' ``.value``. Returns the accepted count as a one-element int64
    device tensor; does not synchronise with the host.
    """
    n_in = rows.shape[0]
    capacity = ring.shape[0]
    # Block/reject accept at most `capacity` rows, all from the front; drop_oldest keeps
    # the last `capacity`. Either way at most `capacity` input rows need programs.
    drop_oldest = policy == POLICY_DROP_OLDEST.value
    first_row = n_in - capacity if drop_oldest and n_in > capacity else 0
    accepted = torch.empty((1,), dtype=torch.int64, device=ring.device)
    Launch(
        _ring_push_kernel,
        (cdiv(min(n_in, capacity), tile.block_m),),
        (
            rows,
            meta,
            ring,
            ring_meta,
            state,
            accepted,
            n_in,
            first_row,
            ring.shape[1],
            meta_width,
            capacity,
            policy,
            rows.stride(0),
            rows.stride(1),
            meta.stride(0),
            meta.stride(1),
        ),
        {"BLOCK_M": tile.block_m, "BLOCK_N": tile.block_n},
        tile.num_warps,
    )()
    return accepted
