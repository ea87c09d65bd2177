"""Plugin hook specifications: the contract between core and every plugin.

Plugins are modules (or objects) listed under the entry-point group ``pydotcompute``
of the distribution that provides them; their functions are marked with
:data:`hookimpl`. Each hook is called once per plugin, on its own: a plugin whose hook
raises or returns something malformed is reported (distribution and entry point named)
and left out, and the others still load. A ``@hookimpl`` whose name matches no hook
below is reported the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pluggy

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "pydotcompute"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def pydotcompute_register_stages() -> Mapping[str, Any]:  # type: ignore[empty-body]
    """Return the stages this plugin provides, as ``{name: StageDefinition}``.

    Each value is a :class:`pydotcompute.StageDefinition` whose ``name`` equals its
    key. Names must be unique across installed plugins; a clash is reported with both
    distributions' names, and the name is unusable until one is uninstalled.
    """


@hookspec
def pydotcompute_register_backends() -> Mapping[str, Callable[[], Any]]:  # type: ignore[empty-body]
    """Return the compute backends this plugin provides, as ``{name: factory}``.

    A factory takes no arguments and returns an object that satisfies
    :class:`pydotcompute.ComputeBackend`. Factories are called lazily, when a pipeline
    first asks for the backend, so importing a plugin stays cheap; a factory that
    raises makes the backend unavailable (``BackendUnavailableError``, with its cause),
    not the plugin broken. ``numpy`` is core's own.
    """
