"""The :class:`~pydotcompute_triton.DeviceRing` pop: copy the oldest rows out, one launch.

Every program reads ``HEAD``/``TAIL``, works out the same count ``min(max_rows, size)``
and copies its share of the rows (and their metadata) from slot ``(head + i) % capacity``
to output row ``i``. The last program to take a ticket (see :mod:`.ring_push`) advances
the head and the popped counter and writes the count to a one-element device tensor.
Nothing is read back to the host here.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._ring_layout import HEAD, META_BLOCK, POPPED, TAIL, TICKET
from ._utils import Launch, RowTile, cdiv
from .ring_push import _copy_rows

__all__ = ["ring_pop"]


@triton.jit(do_not_specialize=["max_rows", "meta_width"])  # type: ignore[untyped-decorator]
def _ring_pop_kernel(  # type: ignore[no-untyped-def]
    ring_ptr,
    ring_meta_ptr,
    out_ptr,
    out_meta_ptr,
    state_ptr,
    count_ptr,
    max_rows,
    width,
    meta_width,
    capacity,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    head = tl.load(state_ptr + HEAD)
    tail = tl.load(state_ptr + TAIL)
    count = tl.minimum(tail - head, max_rows)
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    ok = rows < count
    slots = (head + rows) % capacity
    _copy_rows(ring_ptr, out_ptr, slots, rows, ok, width, width, 1, width, BLOCK_N)
    _copy_rows(
        ring_meta_ptr,
        out_meta_ptr,
        slots,
        rows,
        ok,
        meta_width,
        meta_width,
        1,
        meta_width,
        META_BLOCK,
    )
    tl.debug_barrier()  # this program is done with the state before it takes its ticket
    ticket = tl.atomic_add(state_ptr + TICKET, 1, sem="acq_rel")
    last = ticket == tl.num_programs(0) - 1
    popped = tl.load(state_ptr + POPPED, mask=last, other=0)
    tl.store(state_ptr + HEAD, head + count, mask=last)
    tl.store(state_ptr + POPPED, popped + count, mask=last)
    tl.store(state_ptr + TICKET, 0, mask=last)
    tl.store(count_ptr, count, mask=last)


def ring_pop(
    ring: torch.Tensor,
    ring_meta: torch.Tensor,
    meta_width: int,
    state: torch.Tensor,
    max_rows: int,
    tile: RowTile,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Launch one pop of up to ``max_rows`` rows; return ``(rows, meta, count)`` buffers.

    The caller (:class:`~pydotcompute_triton.DeviceRing`) has validated the arguments:
    ``1 <= max_rows <= capacity``, ``ring`` contiguous ``(capacity, width)``, ``ring_meta``
    contiguous ``(capacity, meta_width)`` int64, or any non-empty int64 tensor when
    ``meta_width`` is 0 (the kernel never touches it then, but needs a valid pointer).
    ``rows`` is ``(max_rows, width)`` and ``meta`` ``(max_rows, meta_width)``; only their
    first ``count`` rows are written (``count`` is a one-element int64 device tensor).
    Does not synchronise with the host.
    """
    capacity, width = ring.shape
    out = torch.empty((max_rows, width), dtype=ring.dtype, device=ring.device)
    out_meta = torch.empty((max_rows, meta_width), dtype=torch.int64, device=ring.device)
    kernel_meta = out_meta if meta_width else ring_meta  # a valid pointer, never used
    count = torch.empty((1,), dtype=torch.int64, device=ring.device)
    Launch(
        _ring_pop_kernel,
        (cdiv(max_rows, tile.block_m),),
        (ring, ring_meta, out, kernel_meta, state, count, max_rows, width, meta_width, capacity),
        {"BLOCK_M": tile.block_m, "BLOCK_N": tile.block_n},
        tile.num_warps,
    )()
    return out, out_meta, count
