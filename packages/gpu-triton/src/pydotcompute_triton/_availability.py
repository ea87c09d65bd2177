"""Whether Triton kernels can run in this process, and if not, why not.

Triton kernels run either compiled on a CUDA device or, with ``TRITON_INTERPRET=1`` set
before ``triton`` is first imported, interpreted on CPU tensors. Nothing here imports
``triton`` at module import time, so the package imports without it.
"""

from __future__ import annotations

import importlib
import os

import torch

from ._errors import TritonUnavailableError

__all__ = [
    "interpreter_active",
    "require_triton",
    "triton_device",
    "triton_unavailable_reason",
]


def _import_error() -> ImportError | None:
    try:
        importlib.import_module("triton")
    except ImportError as exc:
        return exc
    return None


def interpreter_active() -> bool:
    """Whether this process's Triton kernels run in the interpreter.

    True only when ``triton`` imports and its own jitted functions (``tl.sum`` and the
    like) are interpreted, which ``TRITON_INTERPRET`` decides at triton's first import.
    """
    if _import_error() is not None:
        return False
    import triton.language.standard as tl_standard
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(tl_standard.sum, InterpretedFunction)


def _kernels_match_triton_mode() -> bool:
    """Whether this package's kernels were decorated in the mode triton itself runs in."""
    from triton.runtime.interpreter import InterpretedFunction

    from .ops import _utils

    return isinstance(_utils.probe_kernel, InterpretedFunction) == interpreter_active()


def triton_unavailable_reason() -> str | None:
    """Return why Triton kernels cannot run in this process, or ``None`` when they can."""
    err = _import_error()
    if err is not None:
        return (
            "the 'triton' package is not importable "
            f"({type(err).__name__}: {err}); install it with pip install 'triton>=3.0' "
            "(Linux only) or use the 'torch' backend"
        )
    if not _kernels_match_triton_mode():
        return (
            "TRITON_INTERPRET changed between the first 'import triton' and the import of "
            "pydotcompute_triton.ops, so the kernels and triton disagree on the mode; set it "
            "once, before triton is first imported"
        )
    if interpreter_active():
        return None
    if os.environ.get("TRITON_INTERPRET") == "1":
        return (
            "TRITON_INTERPRET=1 is set but triton was imported before it was set, so its "
            "kernels are compiled for a GPU; set it before the first 'import triton'"
        )
    if not torch.cuda.is_available():
        return (
            "no CUDA device is available (torch.cuda.is_available() is False) and the "
            "Triton interpreter is off; run on a CUDA machine, set TRITON_INTERPRET=1 before "
            "triton is first imported, or use the 'torch' backend"
        )
    return None


def require_triton(what: str) -> None:
    """Raise :class:`TritonUnavailableError` naming ``what`` needs Triton and why it cannot run."""
    reason = triton_unavailable_reason()
    if reason is not None:
        raise TritonUnavailableError(f"{what} needs Triton kernels, but {reason}")


def triton_device() -> torch.device:
    """The device Triton kernels run on here: ``cpu`` under the interpreter, else ``cuda``.

    Raises:
        TritonUnavailableError: Triton kernels cannot run in this process.
    """
    require_triton("the triton device")
    return torch.device("cpu") if interpreter_active() else torch.device("cuda")
