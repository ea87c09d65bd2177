"""What a backend author imports: the :class:`ComputeBackend` protocol, core's
:class:`NumpyBackend` (the reference every backend is compared with), the device-queue
protocol behind device rings, and the plugin marker.

A backend is a factory returned from a ``@hookimpl``-marked
``pydotcompute_register_backends`` in a module listed under the ``pydotcompute``
entry-point group.
"""

from __future__ import annotations

from .compute import ComputeBackend, NumpyBackend, to_host
from .dataflow import DeviceQueue
from .plugins import hookimpl

__all__ = ["ComputeBackend", "DeviceQueue", "NumpyBackend", "hookimpl", "to_host"]
