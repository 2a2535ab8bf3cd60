"""The services a session runs beside its signal path: name -> "module:create", resolved lazily.

A factory is `create(ctx: SessionContext) -> SessionService | None`; it returns None when this configuration disables
the service (e.g. no MQTT host given). Registering a service is one line here; the module is imported only when a
session starts, so a service that imports torch costs nothing to `neuromusic --help`. Services start in this order
and are stopped after the signal path, so a player can still send all-notes-off and telemetry its offline status.
A service that is an async context manager is entered as it is made and left, in reverse order, when the session
ends (also when a later factory failed): what it holds (open sinks, an outlet) is let go in every path.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Mapping
from typing import Any

from neuromusic.daemon.session.context import SessionContext, SessionService
from neuromusic.models.core.errors import ConfigError

ServiceSpec = str | Callable[[SessionContext], SessionService | None]

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


async def enter_services(
    stack: contextlib.AsyncExitStack, ctx: SessionContext, specs: list[ServiceSpec] | None
) -> list[SessionService]:
    """Make the session's services (`specs`: names or factories; None: every registered one less [session] without)
    and enter those that are async context managers on `stack`, which leaves them when the session ends."""
    if specs is None:
        without = ctx.config.session.without
        unknown = [name for name in without if name not in SERVICES]
        if unknown:
            raise ConfigError(f"session.without: unknown service {unknown[0]!r}; services: {', '.join(SERVICES)}")
        specs = [name for name in SERVICES if name not in without]
    services: list[SessionService] = []
    for spec in specs:
        made = create_services(ctx, [spec]) if isinstance(spec, str) else [spec(ctx)]
        for service in made:
            if service is None:
                continue
            if isinstance(service, contextlib.AbstractAsyncContextManager):
                await stack.enter_async_context(service)
            services.append(service)
    return services
