"""Triton kernels for pydotcompute's batch operations, one operation per module.

Each module holds a private ``_<op>_kernel`` (``@triton.jit``) and a public launcher that
validates its arguments, allocates the output, and picks the tile and grid. Launchers
accept CUDA tensors, or CPU tensors when ``TRITON_INTERPRET=1`` was set before ``triton``
was first imported. Launches and host synchronisations per call:

=====================  ========  ===========================================
operation              launches  host syncs
=====================  ========  ===========================================
``minmax_normalize``   1         0
``normalize_stats``    1         0 (minmax_normalize and row statistics fused)
``row_*`` reductions   1         0
``segment_sum``        1         1 with ``check=True`` (offsets validation), else 0
``partition``          4         0 (a table clear, two kernels, a cumsum)
=====================  ========  ===========================================

Empty inputs launch nothing. The ring kernels (``ring_push``, ``ring_pop``) serve
:class:`~pydotcompute_triton.DeviceRing` and are not re-exported here.

Importing this package needs ``triton``; :mod:`pydotcompute_triton` itself does not.
"""

from __future__ import annotations

try:
    import triton  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "pydotcompute_triton.ops needs the 'triton' package (pip install 'triton>=3.0', "
        f"Linux only): {exc}"
    ) from exc

from .minmax_normalize import minmax_normalize
from .normalize_stats import normalize_stats
from .partition import partition
from .row_reduce import row_max, row_mean, row_min, row_range, row_std, row_sum, row_var
from .segment_sum import segment_sum

__all__ = [
    "minmax_normalize",
    "normalize_stats",
    "partition",
    "row_max",
    "row_mean",
    "row_min",
    "row_range",
    "row_std",
    "row_sum",
    "row_var",
    "segment_sum",
]
