"""The error vocabulary of pydotcompute: everything raised on purpose derives from
:class:`RingKernelError`, and each docstring says whose fault it is and what to do."""

from __future__ import annotations

__all__ = [
    "KernelAlreadyExistsError",
    "KernelFailedError",
    "KernelNotFoundError",
    "KernelStateError",
    "MessageTypeError",
    "MessageValidationError",
    "QueueClosedError",
    "QueueFullError",
    "QueueTimeoutError",
    "RingKernelError",
]


class RingKernelError(Exception):
    """Base of every error pydotcompute raises on purpose."""


class KernelNotFoundError(RingKernelError, LookupError):
    """No kernel with that id is registered or launched.

    The caller's fault: check the id (the message lists the known ones).
    """


class KernelAlreadyExistsError(RingKernelError):
    """A kernel with that id is already launched in this runtime.

    The caller's fault: launch the same function under a new id instead.
    """


class KernelStateError(RingKernelError):
    """The operation is not allowed in the kernel's current lifecycle state.

    The caller's fault: e.g. activating a terminated kernel, or sending to a kernel
    that is shutting down. The message names the kernel, its state and the operation.
    """


class KernelFailedError(RingKernelError):
    """The kernel's function raised; the original exception is ``__cause__``.

    The kernel's fault: its traceback was logged to the ``pydotcompute`` logger.
    """


class QueueFullError(RingKernelError):
    """A queue with the REJECT strategy was full, so the message was not accepted.

    Expected under load: the caller decides whether to retry, slow down or drop. For
    a bulk send, ``accepted`` says how many of the messages went in before the refusal
    (they are the first ones, in order).
    """

    def __init__(self, *args: object, accepted: int = 0) -> None:
        super().__init__(*args)
        self.accepted = accepted


class QueueTimeoutError(RingKernelError, TimeoutError):
    """Waiting on a queue (for a message, or for room) took longer than the timeout.

    A ``TimeoutError`` (and so ``asyncio.TimeoutError``): loops that catch either keep working.
    """


class QueueClosedError(RingKernelError, TimeoutError):
    """The queue no longer accepts or hands out messages: its kernel is stopping.

    ``ctx.receive`` raises it once termination is requested. It is a ``TimeoutError``
    so that loops which catch ``asyncio.TimeoutError`` around ``receive`` (as the
    guide's do) read it as "nothing more is coming", flush what they hold, and reach
    their ``should_terminate`` check. Nothing is lost: whatever is still queued is
    counted and returned in the shutdown report.
    """


class MessageValidationError(RingKernelError, ValueError):
    """A message is malformed: a field out of range, bad wire bytes, an unknown type.

    The sender's fault: the message names the message type and the field.
    """


class MessageTypeError(MessageValidationError, TypeError):
    """A message is of the wrong type for where it was sent (or not a message at all).

    The sender's fault: the message names the expected and the actual type.
    """
