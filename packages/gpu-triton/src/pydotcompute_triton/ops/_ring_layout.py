"""The device-resident state of a :class:`~pydotcompute_triton.DeviceRing`: one int64 tensor.

Slots of the state tensor, shared by the push and pop kernels (``tl.constexpr`` so the
kernels can read them) and the host (plain ints). ``HEAD`` and ``TAIL`` count rows ever
removed and ever written, so the ring holds ``TAIL - HEAD`` rows in slots
``HEAD % capacity ...`` and never confuses full with empty.
"""

from __future__ import annotations

import triton.language as tl

HEAD = tl.constexpr(0)  #: rows ever removed (popped or evicted)
TAIL = tl.constexpr(1)  #: rows ever written
PUSHED = tl.constexpr(2)  #: rows ever accepted by push
POPPED = tl.constexpr(3)  #: rows ever handed out by pop
DROPPED = tl.constexpr(4)  #: rows ever evicted under drop_oldest
REJECTED = tl.constexpr(5)  #: rows ever refused under reject
TICKET = tl.constexpr(6)  #: programs of the running launch that are done; 0 between launches
STATE_SIZE = 7

#: Backpressure codes the push kernel takes (a runtime argument, not a compiled variant);
#: ``.value`` is the plain int the host passes.
POLICY_BLOCK = tl.constexpr(0)
POLICY_REJECT = tl.constexpr(1)
POLICY_DROP_OLDEST = tl.constexpr(2)

# Metadata columns copied per load: metadata is a few int64 ids per row (a UUID is two).
META_BLOCK = tl.constexpr(4)
