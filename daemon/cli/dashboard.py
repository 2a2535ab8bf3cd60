"""`neuromusic dashboard --mqtt HOST[:PORT] --port 8050`: a live web page of every session on a broker."""

from __future__ import annotations

import argparse
import asyncio

from neuromusic.daemon.cli.mqtt_options import add_connection_arguments, parse_host_port
from neuromusic.models.core.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8050, help="HTTP port of the page (default 8050; 0 = any free)")
    parser.add_argument(
        "--bind", default="127.0.0.1", help="address to serve on (default 127.0.0.1; 0.0.0.0 for a trusted lab LAN)"
    )
    add_connection_arguments(
        parser,
        broker_help="MQTT broker the daemons report to (default localhost:1883)",
        password_help="broker password (visible in the process list on a shared machine)",
    )


def run(args: argparse.Namespace) -> int:
    from neuromusic.daemon.dashboard.server import Broker, Dashboard

    host, port = parse_host_port(args.mqtt or "localhost")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: must be within 0..65535")
    if args.mqtt_password and not args.mqtt_user:
        raise ConfigError("--mqtt-password needs --mqtt-user")
    broker = Broker(host, port, args.mqtt_user or "", args.mqtt_password or "", bool(args.mqtt_tls))
    dashboard = Dashboard(broker, args.bind, args.port)

    async def main() -> None:
        task = asyncio.create_task(dashboard.run())
        ready = asyncio.create_task(dashboard.ready.wait())
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if dashboard.ready.is_set():
            print(f"neuromusic dashboard: http://{args.bind}:{dashboard.port}/ (MQTT {host}:{port})", flush=True)
        await task

    try:
        asyncio.run(main())
    except OSError as error:
        raise ConfigError(f"cannot serve on {args.bind}:{args.port}: {error}") from error
    except KeyboardInterrupt:
        pass
    return 0
