"""The ``cloudcc`` command: ``cloudcc serve`` starts a node."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from cloudcc.config import load_settings
from cloudcc.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cloudcc", description="cloudcc contact center")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start a node")
    serve.add_argument("--config", help="TOML config file (also CLOUDCC_CONFIG)")
    serve.add_argument("--data-dir", type=Path, help="default ./cloudcc-data")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--http-port", type=int, help="default 8080")
    serve.add_argument("--sip-port", type=int, help="default 5060 (UDP and TCP)")
    serve.add_argument("--database-url", help="e.g. postgresql+asyncpg://user@host/db")
    serve.add_argument("--no-demo", action="store_true", help="do not create the demo tenant")
    serve.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="text (default) or json: one object per line, to stderr and <data-dir>/logs",
    )
    serve.add_argument("--log-level", help="debug, info (default), warning, error")
    serve.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    serve.add_argument("--metrics-host", help="address of /metrics (default 127.0.0.1)")
    cluster = serve.add_argument_group("cluster (docs/deployment.md)")
    cluster.add_argument(
        "--node-id",
        "--node-name",
        dest="node_id",
        help="this node's unique name (default: kept in <data-dir>/node-id); a replacement node "
        "given the dead node's name closes what it left at start",
    )
    cluster.add_argument("--nats-url", help="NATS server for events between nodes, nats://...")
    cluster.add_argument(
        "--advertise-host", help="the address other parties reach this node's SIP/RTP on"
    )
    args = parser.parse_args(argv)

    overrides: dict[str, object] = {
        "data_dir": args.data_dir,
        "host": args.host,
        "http_port": args.http_port,
        "database_url": args.database_url,
        "node_name": args.node_id,
    }
    if args.no_demo:
        overrides["demo"] = False
    if args.log_format:
        overrides["log_format"] = args.log_format
    if args.log_level:
        overrides["log_level"] = args.log_level
    settings = load_settings(args.config, overrides=overrides)
    if args.sip_port is not None:
        settings.sip.port = args.sip_port
    if args.host is not None:
        settings.sip.host = settings.media.host = args.host
    if args.metrics_port is not None:
        settings.metrics.port = args.metrics_port
    if args.metrics_host is not None:
        settings.metrics.host = args.metrics_host
    if args.nats_url is not None:
        settings.cluster.nats_url = args.nats_url
    if args.advertise_host is not None:
        settings.sip.public_host = args.advertise_host

    listener = configure_logging(
        settings.log_level,
        settings.log_format,
        settings.logs_dir,
        settings.log_max_bytes,
        settings.log_backups,
    )
    # After a crash, the phones left in dead calls hear a BYE before the node is loaded.
    from cloudcc.recovery.early import release_left_dialogs

    asyncio.run(release_left_dialogs(settings))
    from cloudcc.app import Node

    node = Node(settings)
    try:
        import uvloop

        uvloop.run(node.serve())
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(node.serve())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(
            f"cloudcc: cannot start on {settings.host} (HTTP port {settings.http_port}, "
            f"SIP port {settings.sip.port}): {exc}",
            file=sys.stderr,
        )
        return 1
    finally:
        listener.stop()  # writes what is still queued
    return 0


if __name__ == "__main__":
    sys.exit(main())
