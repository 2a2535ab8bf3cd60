"""`neuromusic dashboard --mqtt HOST[:PORT] --port 8050`: a live web page of every session on a broker."""

from __future__ import annotations

import argparse
import asyncio
import socket
from pathlib import Path

from neuromusic.daemon.cli.flags import add_table
from neuromusic.daemon.cli.mqtt_options import CONNECTION, MQTT, parse_host_port
from neuromusic.models.core.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8050, help="HTTP port of the page (default 8050; 0 = any free)")
    parser.add_argument(
        "--bind", default="127.0.0.1", help="address to serve on (default 127.0.0.1; 0.0.0.0 for a trusted lab LAN)"
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name the page may be reached by, besides localhost, this machine's name and IP addresses "
        "(repeatable; e.g. the name a reverse proxy forwards)",
    )
    parser.add_argument(
        "--auth-file",
        type=Path,
        metavar="PATH",
        help="read the access token from this file's first line (default: a new token at every start, printed in "
        "the page's address)",
    )
    parser.add_argument(
        "--allow-control",
        action="store_true",
        help="forward every remote command (stop, set_policy, set_target, set_bounds, set_controls, clear_override); "
        "by default only pause, resume and marker",
    )
    parser.add_argument(
        "--relaxed-threshold",
        type=float,
        default=0.6,
        metavar="SCORE",
        help="score drawn as the 'relaxed' line on the charts (default 0.6, as in `neuromusic report`)",
    )
    helps = {
        "--mqtt": "MQTT broker the daemons report to (default localhost:1883)",
        "--mqtt-password": "broker password (visible in the process list on a shared machine)",
    }
    add_table(parser, MQTT, only=CONNECTION, helps=helps, keys=False)


def page_address(bind: str, port: int) -> str:
    """Where to point a browser: a wildcard bind is reached by this machine's name."""
    host = socket.gethostname() if bind in ("0.0.0.0", "::", "") else bind
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def run(args: argparse.Namespace) -> int:
    from neuromusic.daemon.dashboard.access import read_token_file
    from neuromusic.daemon.dashboard.server import Broker, Dashboard

    host, port = parse_host_port(args.mqtt or "localhost")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: must be within 0..65535")
    if not 0.0 <= args.relaxed_threshold <= 1.0:
        raise ConfigError(f"--relaxed-threshold must be within 0..1, got {args.relaxed_threshold}")
    if args.mqtt_password and not args.mqtt_user:
        raise ConfigError("--mqtt-password needs --mqtt-user")
    token = read_token_file(args.auth_file) if args.auth_file else None
    broker = Broker(host, port, args.mqtt_user or "", args.mqtt_password or "", bool(args.mqtt_tls))

    async def main() -> None:
        dashboard = Dashboard(
            broker, args.bind, args.port, tuple(args.allow_host), token, args.allow_control, args.relaxed_threshold
        )
        task = asyncio.create_task(dashboard.run())
        ready = asyncio.create_task(dashboard.ready.wait())
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if dashboard.ready.is_set():
            address = page_address(args.bind, dashboard.port)
            login = " (token from --auth-file)" if token else f"?token={dashboard.access.token}"
            print(f"neuromusic dashboard: {address}{login} (MQTT {host}:{port})", flush=True)
        await task

    try:
        asyncio.run(main())
    except OSError as error:
        raise ConfigError(f"cannot serve on {args.bind}:{args.port}: {error}") from error
    except KeyboardInterrupt:
        pass
    return 0
