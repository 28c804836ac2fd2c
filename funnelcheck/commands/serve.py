"""`funnelcheck serve`: the dashboard on 127.0.0.1 with live p.mean overrides (docs/dashboard.md)."""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from funnelcheck.commands.dashboard import PageOptions, add_common, build, report_failed_graphs
from funnelcheck.findings import UsageError


@dataclass(frozen=True, kw_only=True)
class Options(PageOptions):
    """`funnelcheck serve`'s options, typed (built from argparse once, in `cli`)."""

    port: int = 8765
    host: str = "127.0.0.1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--port, --host and the options `dashboard` takes."""
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (default: 8765; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default: 127.0.0.1; anything else exposes the registry to that network)")
    add_common(parser)


def run(args: Options) -> int:
    """Build the page, bind, print the address, serve until interrupted."""
    from funnelcheck.web.serve import DashboardApp, make_server

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, not {args.port}")
    loaded, dashboard = build(args)
    report_failed_graphs("serve", dashboard)
    try:
        server = make_server(DashboardApp(loaded.registry, dashboard), args.host, args.port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    host, port = server.server_address[:2]
    if host not in ("127.0.0.1", "localhost"):
        print(f"funnelcheck serve: warning: listening on {host}, not only this machine", file=sys.stderr)
    print(f"serving the dashboard at http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
