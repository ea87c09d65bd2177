from __future__ import annotations

import pydotcompute

EXPECTED = {
    "BackpressureStrategy",
    "ComputeBackend",
    "DeadLetter",
    "DeadLetterReason",
    "KernelAlreadyExistsError",
    "KernelContext",
    "KernelFailedError",
    "KernelHealth",
    "KernelLeftovers",
    "KernelNotFoundError",
    "KernelSpec",
    "KernelState",
    "KernelStateError",
    "KernelTelemetry",
    "MessageTypeError",
    "MessageValidationError",
    "QueueClosedError",
    "QueueFullError",
    "QueueStatistics",
    "QueueTimeoutError",
    "RestartPolicy",
    "RingKernelError",
    "RingKernelMessage",
    "RingKernelRuntime",
    "RouteMode",
    "RuntimeHealth",
    "ShutdownReport",
    "hookimpl",
    "hookspec",
    "message",
    "ring_kernel",
}


def test_public_names_are_pinned() -> None:
    assert set(pydotcompute.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(pydotcompute, name) is not None


def test_error_hierarchy() -> None:
    p = pydotcompute
    for name in EXPECTED:
        obj = getattr(p, name)
        if isinstance(obj, type) and name.endswith("Error"):
            assert issubclass(obj, p.RingKernelError), name
    assert issubclass(p.QueueTimeoutError, TimeoutError)
    assert issubclass(p.QueueClosedError, TimeoutError)
    assert issubclass(p.MessageValidationError, ValueError)
    assert issubclass(p.MessageTypeError, TypeError)
    assert issubclass(p.KernelNotFoundError, LookupError)
