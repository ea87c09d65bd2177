"""Ray is an optional extra: imported only when a run asks for engine ``"ray"``."""

from __future__ import annotations

import importlib
from types import ModuleType

from ...errors import PipelineRunError

__all__ = ["EXTRA", "RayUnavailableError", "import_ray"]

#: The extra that installs Ray: ``pip install 'pydotcompute[ray]'``.
EXTRA = "pydotcompute[ray]"


class RayUnavailableError(PipelineRunError, RuntimeError):
    """The pipeline asks for engine ``"ray"``, and Ray is not installed (the message
    names the extra), or the Ray to run on cannot be started or reached."""


def import_ray() -> ModuleType:
    """The ``ray`` module.

    Raises:
        RayUnavailableError: Ray is not installed; the message names the extra.
    """
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise RayUnavailableError(
            f"engine 'ray' needs Ray, which is not installed ({exc}); install the extra: "
            f"pip install '{EXTRA}'"
        ) from exc
