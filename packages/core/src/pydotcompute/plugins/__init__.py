"""The plugins layer: the hook specifications a plugin implements, and the plugin manager
that discovers stages and backends through the ``pydotcompute`` entry-point group.
"""

from __future__ import annotations

from ._hookspecs import (
    PROJECT_NAME,
    hookimpl,
    hookspec,
)
from ._manager import (
    DISABLE_AUTOLOAD_ENV,
    ENTRY_POINT_GROUP,
    PluginManager,
    Provided,
    available_backends,
    available_stages,
    create_plugin_manager,
    get_backend,
    get_plugin_manager,
    get_stage,
)

__all__ = [
    "DISABLE_AUTOLOAD_ENV",
    "ENTRY_POINT_GROUP",
    "PROJECT_NAME",
    "PluginManager",
    "Provided",
    "available_backends",
    "available_stages",
    "create_plugin_manager",
    "get_backend",
    "get_plugin_manager",
    "get_stage",
    "hookimpl",
    "hookspec",
]
