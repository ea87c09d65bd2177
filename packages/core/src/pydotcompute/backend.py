"""What a backend author imports: the :class:`ComputeBackend` protocol, the
:class:`BackendCapabilities` a backend declares, core's :class:`NumpyBackend` (the
reference every backend is compared with), the conformance suite, the device-queue
protocol behind device rings, and the plugin marker.

A backend is an object with a ``name``, a ``capabilities`` and every method of
:class:`ComputeBackend` (each documented there, with the numeric policies all backends
share). Arrays in and out are the backend's own; every method also takes host numpy data.
Register a factory from a ``@hookimpl``-marked ``pydotcompute_register_backends`` in a
module listed under the ``pydotcompute`` entry-point group. The backend is created when a
pipeline first asks for it and checked then (:func:`check_backend`): a missing method is a
:class:`BackendProtocolError` naming the backend and the method.

Capabilities (:class:`BackendCapabilities`, all off by default):

* ``device_rings``: the backend has ``make_ring(capacity, like, backpressure)``, returning
  a :class:`DeviceQueue` for rows like ``like`` (or None when it cannot hold them); two
  stages on this backend then link their workers by reference with a bound in rows, or
  through device rings where ``ring_rows`` asks for them, instead of plain host queues.

Optional methods a device backend may add (looked up by name, none required):

* ``async def to_numpy_async(x)``: ``x`` on the host without blocking the event loop; a
  map stage whose results leave the pipeline awaits it instead of ``to_numpy``.
* ``device_fault(exc)``: ``exc`` as a :class:`~pydotcompute.errors.DeviceFaultError`
  when it is the device's fault (a sticky CUDA error), else None; a map stage that
  meets one ends its worker, failing the run, instead of failing batch after batch.
* ``fuse_ops(ops)``: one callable doing a fused chain's work on a batch, given each
  member's ``MapStage.fused_op()`` (``("minmax_normalize",)``, ``("row_stats", *stats)``),
  or None; a fused worker then makes one call (one kernel) per batch instead of one per
  member. Its results must equal the members' own.

The conformance suite checks every operation against the policies and against
:class:`NumpyBackend`; run it from your backend's tests, one test per case::

    import pytest
    from pydotcompute.backend import conformance_cases

    @pytest.mark.parametrize("case", conformance_cases(), ids=str)
    def test_conformance(case):
        case.run(MyBackend())

A failing case raises ``AssertionError`` naming the backend, the operation, the input and
the mismatch. The suite needs numpy only, and its inputs are small enough for a slow
(interpreted) backend.
"""

from __future__ import annotations

from .compute import (
    BackendCapabilities,
    ComputeBackend,
    ConformanceCase,
    NumpyBackend,
    check_backend,
    clip_bounds,
    conformance_cases,
    to_host,
)
from .dataflow import DeviceQueue
from .errors import BackendProtocolError
from .plugins import hookimpl

__all__ = [
    "BackendCapabilities",
    "BackendProtocolError",
    "ComputeBackend",
    "ConformanceCase",
    "DeviceQueue",
    "NumpyBackend",
    "check_backend",
    "clip_bounds",
    "conformance_cases",
    "hookimpl",
    "to_host",
]
