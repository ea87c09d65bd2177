"""Plugin discovery: one plugin manager, and the registries of stages and backends.

Plugins are the entry points of group ``pydotcompute`` (a module or an object whose
functions carry :data:`pydotcompute.hookimpl`). Core registers its own built-ins first
(the ``numpy`` backend). Entry points are loaded one at a time, so a broken plugin (an
import error, a hook with no spec or a bad signature, a hook that raises or returns
nonsense) becomes a :class:`PluginLoadError` naming its distribution and entry point,
kept in :attr:`PluginManager.load_errors`, and every other plugin still works.

Set ``PYDOTCOMPUTE_DISABLE_PLUGIN_AUTOLOAD=1`` to skip entry points (tests do).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, NamedTuple

import pluggy

from ..compute import ComputeBackend, NumpyBackend, check_backend
from ..dataflow import StageDefinition
from ..errors import (
    BackendUnavailableError,
    PluginConflictError,
    PluginLoadError,
    UnknownBackendError,
    UnknownStageError,
)
from . import _hookspecs
from ._hookspecs import PROJECT_NAME, hookimpl

__all__ = [
    "DISABLE_AUTOLOAD_ENV",
    "ENTRY_POINT_GROUP",
    "PluginManager",
    "Provided",
    "available_backends",
    "available_stages",
    "create_plugin_manager",
    "get_backend",
    "get_plugin_manager",
    "get_stage",
]

ENTRY_POINT_GROUP: Final = PROJECT_NAME
DISABLE_AUTOLOAD_ENV: Final = "PYDOTCOMPUTE_DISABLE_PLUGIN_AUTOLOAD"
CORE_DISTRIBUTION: Final = "pydotcompute"

_STAGES_HOOK: Final = "pydotcompute_register_stages"
_BACKENDS_HOOK: Final = "pydotcompute_register_backends"


class Provided(NamedTuple):
    """One registry entry: what a plugin provides, and which distribution provides it."""

    definition: Any  #: a StageDefinition, or a backend factory
    distribution: str  #: the providing distribution ("pydotcompute" for core's own)


class _CoreBuiltins:
    """Core's own plugin: the numpy backend."""

    @hookimpl
    def pydotcompute_register_backends(self) -> Mapping[str, Callable[[], ComputeBackend]]:
        return {"numpy": NumpyBackend}


@dataclasses.dataclass(frozen=True)
class _Origin:
    distribution: str
    entry_point: str


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus where each plugin came from, the load errors, and the
    stage and backend registries (built on first use, then cached)."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.load_errors: list[PluginLoadError] = []
        self.conflicts: dict[tuple[str, str], PluginConflictError] = {}
        self._origins: dict[str, _Origin] = {}
        self._stages: dict[str, Provided] | None = None
        self._backends: dict[str, Provided] | None = None
        self._backend_instances: dict[str, ComputeBackend] = {}
        self._lock = threading.Lock()

    # -- registration ------------------------------------------------------------------

    def register_plugin(self, plugin: object, *, distribution: str, entry_point: str) -> bool:
        """Register ``plugin`` on behalf of ``distribution``; True on success.

        A plugin that pluggy refuses (a hook with a bad signature) or whose hooks match
        no specification is unregistered again and recorded in :attr:`load_errors`.
        """
        name = f"{distribution}:{entry_point}"
        if self.get_plugin(name) is not None:
            name = f"{name}#{len(self._origins)}"
        try:
            self.register(plugin, name=name)
        except Exception as exc:
            if self.get_plugin(name) is not None:
                self.unregister(name=name)
            self._record(distribution, entry_point, f"cannot register it: {exc}")
            return False
        unknown = sorted(
            caller.name for caller in self.get_hookcallers(plugin) or [] if not caller.has_spec()
        )
        if unknown:
            self.unregister(name=name)
            known = ", ".join(sorted(n for n in dir(_hookspecs) if n.startswith("pydotcompute_")))
            self._record(
                distribution,
                entry_point,
                f"hook implementation(s) {', '.join(unknown)} match no hook specification "
                f"(known hooks: {known})",
            )
            return False
        self._origins[name] = _Origin(distribution, entry_point)
        self._invalidate()
        return True

    def load_entrypoints(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Load and register every entry point of ``group``, one at a time; failures go
        to :attr:`load_errors`."""
        for ep in _entry_points(group):
            dist = ep.dist.name if ep.dist is not None else "<unknown distribution>"
            try:
                plugin = ep.load()
            except Exception as exc:
                self._record(dist, ep.name, f"importing {ep.value!r} failed: {exc!r}")
                continue
            self.register_plugin(plugin, distribution=dist, entry_point=ep.name)

    def _record(self, distribution: str, entry_point: str, reason: str) -> None:
        for known in self.load_errors:  # registries are rebuilt after a registration
            if (known.distribution, known.entry_point, known.reason) == (
                distribution,
                entry_point,
                reason,
            ):
                return
        self.load_errors.append(PluginLoadError(distribution, entry_point, reason))

    def _invalidate(self) -> None:
        self._stages = None
        self._backends = None
        self._backend_instances.clear()

    # -- registries --------------------------------------------------------------------

    def stages(self) -> dict[str, Provided]:
        """Stage name -> :class:`Provided` (a StageDefinition), names in order."""
        with self._lock:
            if self._stages is None:
                self._stages = self._collect(_STAGES_HOOK, "stage", _check_stage)
            return dict(self._stages)

    def backends(self) -> dict[str, Provided]:
        """Backend name -> :class:`Provided` (a factory), names in order."""
        with self._lock:
            if self._backends is None:
                self._backends = self._collect(_BACKENDS_HOOK, "backend", _check_backend)
            return dict(self._backends)

    def _collect(
        self, hook_name: str, kind: str, check: Callable[[str, Any], str | None]
    ) -> dict[str, Provided]:
        for key in [k for k in self.conflicts if k[0] == kind]:
            del self.conflicts[key]
        found: dict[str, Provided] = {}
        providers: dict[str, list[str]] = {}
        caller = getattr(self.hook, hook_name)
        # Call each implementation on its own: pluggy would let one raising hook take
        # every other plugin's answer down with it. Registration order, core first.
        for impl in caller.get_hookimpls():
            origin = self._origins.get(impl.plugin_name, _Origin(impl.plugin_name, "?"))
            try:
                answer = impl.function()
            except Exception as exc:
                self._record(
                    origin.distribution, origin.entry_point, f"{hook_name}() raised {exc!r}"
                )
                continue
            if answer is None:
                continue
            if not isinstance(answer, Mapping):
                self._record(
                    origin.distribution,
                    origin.entry_point,
                    f"{hook_name}() must return a mapping of name -> {kind}, "
                    f"got {type(answer).__qualname__}",
                )
                continue
            for name, value in answer.items():
                problem = check(name, value)
                if problem is not None:
                    self._record(
                        origin.distribution, origin.entry_point, f"{kind} {name!r}: {problem}"
                    )
                    continue
                providers.setdefault(name, []).append(
                    f"{origin.distribution!r} (entry point {origin.entry_point!r})"
                )
                found.setdefault(name, Provided(value, origin.distribution))
        for name, who in providers.items():
            if len(who) > 1:
                found.pop(name, None)
                self.conflicts[(kind, name)] = PluginConflictError(kind, name, who)
        return found

    def stage(self, name: str) -> StageDefinition:
        """The stage registered as ``name``.

        Raises:
            UnknownStageError: none is; the message lists the installed stages.
            PluginConflictError: several plugins register it.
        """
        stages = self.stages()
        if name in stages:
            definition: StageDefinition = stages[name].definition
            return definition
        if ("stage", name) in self.conflicts:
            raise self.conflicts[("stage", name)]
        raise UnknownStageError(
            f"no installed plugin provides a stage named {name!r}; installed stages: "
            f"{_listing(stages)}{self._broken_hint()}"
        )

    def backend(self, name: str) -> ComputeBackend:
        """The backend registered as ``name``, created on first use and then shared.

        Raises:
            UnknownBackendError: none is; the message lists the installed backends.
            PluginConflictError: several plugins register it.
            BackendUnavailableError: its factory raised (cause attached).
            BackendProtocolError: what it made is no ComputeBackend (the message names
                the backend and what is missing).
        """
        backends = self.backends()
        if name not in backends:
            if ("backend", name) in self.conflicts:
                raise self.conflicts[("backend", name)]
            raise UnknownBackendError(
                f"no installed plugin provides a backend named {name!r}; installed "
                f"backends: {_listing(backends)}{self._broken_hint()}"
            )
        with self._lock:
            instance = self._backend_instances.get(name)
            if instance is None:
                provided = backends[name]
                try:
                    instance = provided.definition()
                except Exception as exc:
                    raise BackendUnavailableError(
                        f"backend {name!r} from {provided.distribution!r} cannot be created "
                        f"here: {exc!r}"
                    ) from exc
                instance = check_backend(instance, name)
                self._backend_instances[name] = instance
            return instance

    def _broken_hint(self) -> str:
        if not self.load_errors:
            return ""
        names = sorted({e.distribution for e in self.load_errors})
        return f" (broken plugins were skipped, from: {', '.join(names)})"


def _listing(entries: Mapping[str, Provided]) -> str:
    if not entries:
        return "none"
    return ", ".join(f"{name} (from {p.distribution})" for name, p in entries.items())


def _check_stage(name: Any, value: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return "the name must be a non-empty string"
    if not isinstance(value, StageDefinition):
        return f"expected a pydotcompute.StageDefinition, got {type(value).__qualname__}"
    if value.name != name:
        return f"registered as {name!r} but its definition is named {value.name!r}"
    return None


def _check_backend(name: Any, value: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return "the name must be a non-empty string"
    if not callable(value):
        return f"expected a factory (a callable), got {type(value).__qualname__}"
    return None


def _entry_points(group: str) -> Iterable[importlib.metadata.EntryPoint]:
    seen: set[tuple[str, str, str]] = set()
    for ep in importlib.metadata.entry_points(group=group):
        dist = ep.dist.name if ep.dist is not None else ""
        key = (dist, ep.name, ep.value)
        if key in seen:  # the same distribution found twice on sys.path
            continue
        seen.add(key)
        yield ep


def autoload_disabled() -> bool:
    """True when ``PYDOTCOMPUTE_DISABLE_PLUGIN_AUTOLOAD`` is set to a true value."""
    return os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def create_plugin_manager(*, autoload: bool | None = None) -> PluginManager:
    """A fresh manager: hook specs added, core built-ins registered, then (unless
    ``autoload`` is False, or None and the environment variable says so) every
    ``pydotcompute`` entry point, then ``check_pending()``."""
    pm = PluginManager()
    pm.add_hookspecs(_hookspecs)
    pm.register_plugin(_CoreBuiltins(), distribution=CORE_DISTRIBUTION, entry_point="builtin")
    if autoload if autoload is not None else not autoload_disabled():
        pm.load_entrypoints()
    pm.check_pending()
    return pm


_global: PluginManager | None = None
_global_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process-wide manager, created on first call (see :func:`create_plugin_manager`)."""
    global _global
    with _global_lock:
        if _global is None:
            _global = create_plugin_manager()
        return _global


def available_stages(pm: PluginManager | None = None) -> dict[str, Provided]:
    """Installed stages: name -> ``Provided(definition, distribution)``."""
    return (pm or get_plugin_manager()).stages()


def available_backends(pm: PluginManager | None = None) -> dict[str, Provided]:
    """Installed backends: name -> ``Provided(factory, distribution)``."""
    return (pm or get_plugin_manager()).backends()


def get_stage(name: str, pm: PluginManager | None = None) -> StageDefinition:
    """The installed stage ``name``; raises UnknownStageError listing what is installed."""
    return (pm or get_plugin_manager()).stage(name)


def get_backend(name: str, pm: PluginManager | None = None) -> ComputeBackend:
    """The installed backend ``name``, created once; raises UnknownBackendError listing
    what is installed, BackendUnavailableError if it cannot run here."""
    return (pm or get_plugin_manager()).backend(name)
