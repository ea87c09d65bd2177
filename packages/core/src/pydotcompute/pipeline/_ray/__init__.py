"""The Ray engine: a plan's stage workers as Ray actors (see :mod:`._run`).

Nothing here imports Ray at import time: :func:`import_ray` does, when a run starts.
"""

from __future__ import annotations

from ._require import EXTRA, RayUnavailableError, import_ray
from ._run import DEFAULT_IN_FLIGHT, DEFAULT_PLACE_TIMEOUT_S, RayPipelineRun, ray_groups
from ._worker import DRIVER, StageWorker, WorkerSpec, WorkerStats

__all__ = [
    "DEFAULT_IN_FLIGHT",
    "DEFAULT_PLACE_TIMEOUT_S",
    "DRIVER",
    "EXTRA",
    "RayPipelineRun",
    "RayUnavailableError",
    "StageWorker",
    "WorkerSpec",
    "WorkerStats",
    "import_ray",
    "ray_groups",
]
