"""The services a session runs beside its signal path: name -> "module:create", resolved lazily.

A factory is `create(ctx: SessionContext) -> SessionService | None`; it returns None when this configuration disables
the service (e.g. no MQTT host given). Registering a service is one line here; the module is imported only when a
session starts, so a service that imports torch costs nothing to `neuromusic --help`. Services start in this order
and are stopped after the signal path, so a player can still send all-notes-off and telemetry its offline status.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from neuromusic.daemon.session.context import SessionContext, SessionService
from neuromusic.models.core.errors import ConfigError

SERVICES: dict[str, str] = {
    "json": "neuromusic.daemon.services.json_output:create",
    "view": "neuromusic.daemon.services.terminal_view:create",
    "telemetry": "neuromusic.daemon.services.telemetry:create",
    "recorder": "neuromusic.daemon.services.recorder:create",
    "player": "neuromusic.daemon.services.player:create",
    "script_phases": "neuromusic.daemon.services.script_phases:create",
    "replay_markers": "neuromusic.daemon.services.replay_markers:create",
    "lsl_markers": "neuromusic.daemon.services.lsl_markers:create",
    "lsl_out": "neuromusic.daemon.services.lsl_out:create",
}


def resolve(spec: str) -> Callable[[SessionContext], Any]:
    """Import "package.module:attr" and return the attribute; a bad spec is a ConfigError naming it."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"service factory {spec!r} must look like 'package.module:create'")
    module = importlib.import_module(module_name)
    try:
        factory = getattr(module, attr)
    except AttributeError as error:
        raise ConfigError(f"service factory {spec!r}: {module_name} has no attribute {attr!r}") from error
    if not callable(factory):
        raise ConfigError(f"service factory {spec!r} is not callable")
    return factory


def create_services(
    ctx: SessionContext, names: list[str] | None = None, registry: Mapping[str, str] | None = None
) -> list[SessionService]:
    """Create the named services (all registered ones when `names` is None), leaving out those that return None."""
    table = SERVICES if registry is None else registry
    chosen = list(table) if names is None else names
    unknown = [name for name in chosen if name not in table]
    if unknown:
        raise ConfigError(f"unknown service {unknown[0]!r}; registered services: {', '.join(table)}")
    services: list[SessionService] = []
    for name in chosen:
        service = resolve(table[name])(ctx)
        if service is not None:
            services.append(service)
    return services
