"""Errors raised on purpose by pydotcompute-triton, under pydotcompute's ``RingKernelError``."""

from __future__ import annotations

from pydotcompute import RingKernelError

__all__ = ["TritonUnavailableError"]


class TritonUnavailableError(RingKernelError, RuntimeError):
    """The Triton backend, its kernels or a :class:`DeviceRing` cannot run here.

    The environment's fault, not the data's: the message names what is missing (the
    ``triton`` package, a CUDA device, or ``TRITON_INTERPRET=1`` set before ``triton`` was
    first imported). Install what it names, or use the ``torch`` backend instead.
    """
